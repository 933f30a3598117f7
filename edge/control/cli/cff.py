"""``edgelab cff``: CloudFront Functions from the command line, on the same service layer as the API
(``edge.cdn.cloudfront_functions.functions.FunctionStore``)::

    edgelab cff test FILE EVENT... [--runtime cloudfront-js-2.0] [--kvs DATA.json]   run FILE on each event
    edgelab cff create NAME FILE [--runtime R] [--comment C] [--kvs STORE] [--publish]   create or update
    edgelab cff publish NAME                                                          DEVELOPMENT -> LIVE
    edgelab cff list [--stage LIVE]

``test`` needs no stack: it runs the code in a throwaway store exactly as TestFunction does (same engine, same
output fields: FunctionOutput, ComputeUtilization, FunctionExecutionLogs, FunctionErrorMessage), for any number of
events (AWS's TestFunction takes one per call), with an optional key value store imported from a file in AWS's
import format. ``create``/``publish``/``list`` work on the state directory (``--state-dir``, default ``.edgelab``):
a running stack's POPs pick a publication up within a second. Exit status 1 when a test event failed or the
code has constructs the runtime refuses (named on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_cff_commands", "run_cff_command"]


def add_cff_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cff", help="CloudFront Functions: test code locally, create/publish/list functions")
    cmds = p.add_subparsers(dest="cff_command", required=True)
    t = cmds.add_parser("test", help="run a function file on event files (TestFunction's output, any number)")
    t.add_argument("file", type=Path, help="the function's code (index.js)")
    t.add_argument("events", nargs="+", type=Path, help="event objects (JSON files in CloudFront's event format)")
    t.add_argument("--runtime", default="cloudfront-js-2.0", choices=("cloudfront-js-1.0", "cloudfront-js-2.0"),
                   help="the runtime (default %(default)s)")
    t.add_argument("--kvs", type=Path, default=None, help='key value store data: {"data": [{"key", "value"}]}')
    c = cmds.add_parser("create", help="create (or update) a function from a file in the state directory")
    c.add_argument("name", help="function name")
    c.add_argument("file", type=Path, help="the function's code (index.js)")
    c.add_argument("--runtime", default="cloudfront-js-2.0", choices=("cloudfront-js-1.0", "cloudfront-js-2.0"),
                   help="the runtime (default %(default)s)")
    c.add_argument("--comment", default="", help="the function's comment")
    c.add_argument("--kvs", default=None, metavar="STORE", help="associate the key value store named STORE")
    c.add_argument("--publish", action="store_true", help="publish to LIVE (what distributions run)")
    pub = cmds.add_parser("publish", help="publish a function's DEVELOPMENT stage to LIVE")
    pub.add_argument("name", help="function name")
    ls = cmds.add_parser("list", help="list functions")
    ls.add_argument("--stage", default=None, choices=("DEVELOPMENT", "LIVE"), help="only this stage")
    for q in (c, pub, ls):
        q.add_argument("--state-dir", type=Path, default=Path(".edgelab"),
                       help="the stack's state directory (default .edgelab)")


def _store(state_dir: Path) -> tuple[Any, Any]:
    from edge.cdn.cloudfront_functions.db import CffDatabase
    from edge.cdn.cloudfront_functions.functions import FunctionStore
    from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService, KvsSnapshots

    db = CffDatabase(state_dir)
    snapshots = KvsSnapshots(db, poll_interval=0.0)
    return FunctionStore(db, kvs_views=snapshots.view), KeyValueStoreService(db)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"edgelab cff: cannot read {path}: {exc.strerror or exc}") from None


def _test(args: argparse.Namespace) -> int:
    from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError

    code = _read(args.file)
    events = [_read(e) for e in args.events]
    with tempfile.TemporaryDirectory(prefix="edgelab-cff-") as tmp:
        store, kvs = _store(Path(tmp))
        config: dict[str, Any] = {"Comment": "edgelab cff test", "Runtime": args.runtime}
        try:
            if args.kvs is not None:
                arn = kvs.create("test", import_source={"SourceType": "S3", "SourceARN": str(args.kvs)})["KeyValueStore"]["ARN"]
                config["KeyValueStoreAssociations"] = {"Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}
            created = store.create("test", config, code)
            results = store.test_many("test", created["ETag"], events)
        except CloudFrontApiError as exc:
            print(f"edgelab cff: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        finally:
            store.db.close()
    for warning in created["Warnings"]:
        print(f"{args.file}: {warning} (CloudFront accepts this code and fails every request it runs for)",
              file=sys.stderr)
    failed = bool(created["Warnings"])
    for path, result in zip(args.events, results, strict=True):
        out = {k: v for k, v in result.items() if k != "FunctionSummary"}
        if out["FunctionOutput"]:
            out["FunctionOutput"] = json.loads(out["FunctionOutput"])
        failed = failed or bool(out["FunctionErrorMessage"])
        print(json.dumps({"Event": str(path), **out}, indent=2))
    return 1 if failed else 0


def _manage(args: argparse.Namespace) -> int:
    from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError

    store, kvs = _store(args.state_dir)
    try:
        if args.cff_command == "list":
            out: Any = store.list(stage=args.stage)["FunctionList"]["Items"]
        elif args.cff_command == "publish":
            out = store.publish(args.name, store.describe(args.name)["ETag"])["FunctionSummary"]
        else:
            out = _create(store, kvs, args)
    except CloudFrontApiError as exc:
        print(f"edgelab cff: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.db.close()
    print(json.dumps(out, indent=2, default=str))
    return 0


def _create(store: Any, kvs: Any, args: argparse.Namespace) -> Any:
    from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError

    config: dict[str, Any] = {"Comment": args.comment, "Runtime": args.runtime}
    if args.kvs is not None:
        arn = kvs.describe(args.kvs)["KeyValueStore"]["ARN"]
        config["KeyValueStoreAssociations"] = {"Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}
    code = _read(args.file)
    try:
        out = store.update(args.name, store.describe(args.name)["ETag"], config, code)
    except CloudFrontApiError as exc:
        if exc.code != "NoSuchFunctionExists":
            raise
        out = store.create(args.name, config, code)
    for warning in out["Warnings"]:
        print(f"{args.file}: {warning} (CloudFront accepts this code and fails every request it runs for)",
              file=sys.stderr)
    if args.publish:
        return store.publish(args.name, out["ETag"])["FunctionSummary"]
    return out["FunctionSummary"]


def run_cff_command(args: argparse.Namespace) -> int:
    return _test(args) if args.cff_command == "test" else _manage(args)
