"""The stores shared by processes: real SQLite files, writers in child processes (integration)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.engine import FunctionEngine
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService, KvsSnapshots

REPO = Path(__file__).resolve().parents[3]


def child(state_dir: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = "import sys\nfrom pathlib import Path\nfrom edge.cdn.cloudfront_functions.db import CffDatabase\n" \
             "from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService\n" \
             f"db = CffDatabase(Path({str(state_dir)!r}))\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_a_put_in_another_process_reaches_a_running_function_within_a_second(tmp_path) -> None:
    svc = KeyValueStoreService(CffDatabase(tmp_path))
    arn = svc.create("routes")["KeyValueStore"]["ARN"]
    svc.put_key(arn, "route", "/old", svc.kvs_describe(arn)["ETag"])
    snaps = KvsSnapshots(CffDatabase(tmp_path))  # default poll interval 0.2 s
    code = "import cf from 'cloudfront';\nasync function handler(e) { e.request.uri = await cf.kvs().get('route'); return e.request; }"
    engine = FunctionEngine("f", code, "cloudfront-js-2.0")
    ev = {"version": "1.0", "context": {"eventType": "viewer-request"}, "viewer": {"ip": "127.0.0.1"},
          "request": {"method": "GET", "uri": "/", "querystring": {}, "headers": {}, "cookies": {}}}
    assert engine.invoke(ev, kvs=snaps.view(arn)).value["uri"] == "/old"
    out = child(tmp_path, f"""
        svc = KeyValueStoreService(db)
        svc.put_key({arn!r}, "route", "/new", svc.kvs_describe({arn!r})["ETag"])
    """)
    assert out.returncode == 0, out.stderr
    written = time.monotonic()
    uri = "/old"
    for _ in range(200):  # bounded: 200 x 10 ms
        uri = engine.invoke(ev, kvs=snaps.view(arn)).value["uri"]
        if uri == "/new":
            break
        time.sleep(0.01)
    assert uri == "/new" and time.monotonic() - written < 1.0


def test_two_processes_racing_on_one_etag_one_wins(tmp_path) -> None:
    svc = KeyValueStoreService(CffDatabase(tmp_path))
    arn = svc.create("race")["KeyValueStore"]["ARN"]
    etag = svc.kvs_describe(arn)["ETag"]
    body = f"""
        from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError
        svc = KeyValueStoreService(db)
        try:
            svc.put_key({arn!r}, "k", sys.argv[1] if len(sys.argv) > 1 else "x", {etag!r})
            print("won")
        except CloudFrontApiError as exc:
            print(exc.code)
    """
    script = "import sys\nfrom pathlib import Path\nfrom edge.cdn.cloudfront_functions.db import CffDatabase\n" \
             "from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService\n" \
             f"db = CffDatabase(Path({str(tmp_path)!r}))\n" + textwrap.dedent(body)
    procs = [subprocess.Popen([sys.executable, "-c", script, name], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    outs = [p.communicate(timeout=60) for p in procs]
    results = sorted(o[0].strip() for o in outs)
    assert results == ["ConflictException", "won"], outs
    assert svc.kvs_describe(arn)["ItemCount"] == 1

