"""The CloudFront function store (DEVELOPMENT / LIVE stages, ETags, AWS's API errors) and TestFunction.

Sources: CloudFront API Reference 2020-05-31 ``CreateFunction``, ``UpdateFunction``, ``DescribeFunction``,
``GetFunction``, ``PublishFunction``, ``TestFunction`` (``TestResult``), ``ListFunctions``, ``DeleteFunction``
and botocore's model of them; AWS Developer Guide, CloudFront, ``test-function`` (what a test checks and
reports), ``edge-functions-logs`` (log group ``/aws/cloudfront/function/<Name>`` in us-east-1, lines prefixed
with the request id, framed by START/END), ``cloudfront-limits`` (10 KB code, 100 functions).

A service layer for the phase 2 REST endpoint: each method takes the operation's inputs (already parsed from
XML/query/headers) and returns the response members as a dict, or raises ``CloudFrontApiError``; the endpoint
only serialises. Beyond AWS: create/update return ``Warnings`` — the runtime's refusals found by the syntax gate
(CloudFront accepts such code and fails at execution; so does edgelab, but says so up front).

Stages: CreateFunction/UpdateFunction write DEVELOPMENT (status ``UNPUBLISHED``); PublishFunction copies it to
LIVE (status ``UNASSOCIATED``, or ``DEPLOYED`` while a distribution uses it: ``in_use``). The ETag of each stage
changes on every write to it; Update/Publish/Delete take the DEVELOPMENT ETag, TestFunction the ETag of the
stage it tests.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.cdn.cloudfront_functions.api_errors import api_error
from edge.cdn.cloudfront_functions.checker import check_code
from edge.cdn.cloudfront_functions.db import CffDatabase, new_etag
from edge.cdn.cloudfront_functions.engine import EngineLimits, FunctionEngine, KvsView
from edge.cdn.cloudfront_functions.errors import EXECUTION_PAGE_LINE
from edge.cdn.cloudfront_functions.limits import (
    DEFAULT_ACCOUNT,
    EVENT_TYPES,
    FUNCTION_NAME_RE,
    MAX_CODE_BLOB_BYTES,
    MAX_CODE_BYTES,
    MAX_COMMENT,
    MAX_FUNCTIONS,
    MAX_TEST_EVENT_BYTES,
    RUNTIME_2,
    RUNTIMES,
    VIEWER_REQUEST,
)

__all__ = ["FunctionStore", "LiveFunction", "function_arn", "function_log_lines", "parse_function_arn"]

DEVELOPMENT, LIVE = "DEVELOPMENT", "LIVE"
LOG_REGION = "us-east-1"


def function_arn(name: str, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:cloudfront::{account}:function/{name}"


def parse_function_arn(arn: str) -> tuple[str, str] | None:
    """``arn:aws:cloudfront::ACCOUNT:function/NAME`` -> (account, name); None if it is not one."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "cloudfront"] or parts[3] != "" or not parts[5].startswith("function/"):
        return None
    name = parts[5][len("function/"):]
    return (parts[4], name) if FUNCTION_NAME_RE.match(name) else None


def function_log_lines(name: str, request_id: str, distribution_id: str, lines: Iterable[str]) -> tuple[str, list[str]]:
    """(log group, lines) as CloudFront writes a LIVE function's console output (edge-functions-logs)."""
    body = [f"{request_id} {line}" for line in lines]
    return f"/aws/cloudfront/function/{name}", [f"{request_id} START DistributionID: {distribution_id}", *body, f"{request_id} END"]


@dataclass(frozen=True, slots=True)
class LiveFunction:
    """What the pipeline runs for an association: the LIVE stage of a function."""

    name: str
    arn: str
    runtime: str
    code: str
    kvs_arn: str | None
    etag: str


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class FunctionStore:
    def __init__(self, db: CffDatabase, *, account: str = DEFAULT_ACCOUNT, limits: EngineLimits | None = None,
                 in_use: Callable[[str], bool] | None = None, kvs_views: Callable[[str], KvsView | None] | None = None) -> None:
        self.db = db
        self.account = account
        self.limits = limits or EngineLimits()
        self._in_use = in_use or (lambda name: False)  # phase 2: associated with a loaded distribution?
        self._kvs_views = kvs_views  # KvsSnapshots.view, for TestFunction
        self._engines: dict[tuple[str, str], tuple[str, FunctionEngine]] = {}  # (name, stage) -> (etag, engine)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ validation
    def _validate(self, name: str, config: Any, code: Any) -> tuple[str, str, list[str], str, list[str]]:
        if not isinstance(name, str) or not FUNCTION_NAME_RE.match(name):
            raise api_error("InvalidArgument", "Name must be 1-64 characters: letters, digits, hyphens and underscores.")
        if not isinstance(config, dict):
            raise api_error("InvalidArgument", "FunctionConfig {Comment, Runtime} is required.")
        comment, runtime = config.get("Comment"), config.get("Runtime")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise api_error("InvalidArgument", f"FunctionConfig.Comment is required and at most {MAX_COMMENT} characters.")
        if runtime not in RUNTIMES:
            raise api_error("InvalidArgument", f"FunctionConfig.Runtime must be one of {', '.join(RUNTIMES)}.")
        assoc = config.get("KeyValueStoreAssociations") or {}
        items = assoc.get("Items") or [] if isinstance(assoc, dict) else None
        if items is None or not isinstance(items, list):
            raise api_error("InvalidArgument", "KeyValueStoreAssociations must be {Quantity, Items: [{KeyValueStoreARN}]}.")
        arns = [i.get("KeyValueStoreARN") if isinstance(i, dict) else None for i in items]
        if len(arns) > 1:
            raise api_error("InvalidArgument", "A function can be associated with at most one key value store.")
        if arns and runtime != RUNTIME_2:
            raise api_error("InvalidArgument", "Key value stores need the cloudfront-js-2.0 runtime.")
        checked: builtins.list[str] = []
        for arn in arns:
            if not isinstance(arn, str) or not self._kvs_exists(arn):
                raise api_error("InvalidArgument", f"The key value store {arn} does not exist: create it first (CreateKeyValueStore).")
            checked.append(arn)
        if isinstance(code, str):
            code = code.encode("utf-8")
        if not isinstance(code, bytes | bytearray) or not code:
            raise api_error("InvalidArgument", "FunctionCode is required.")
        if len(code) > MAX_CODE_BLOB_BYTES:
            raise api_error("InvalidArgument", f"FunctionCode is longer than {MAX_CODE_BLOB_BYTES} bytes.")
        if len(code) > MAX_CODE_BYTES:
            raise api_error("FunctionSizeLimitExceeded",
                            f"The function code is {len(code)} bytes; the maximum is {MAX_CODE_BYTES} (10 KB). Make it smaller.")
        try:
            text = bytes(code).decode("utf-8")
        except UnicodeDecodeError:
            raise api_error("InvalidArgument", "FunctionCode must be UTF-8 text.") from None
        warnings = [p.message for p in check_code(text, runtime).problems]
        return comment, str(runtime), checked, text, warnings

    def _kvs_exists(self, arn: str) -> bool:
        prefix = f"arn:aws:cloudfront::{self.account}:key-value-store/"
        if not arn.startswith(prefix):
            return False
        with self.db.read() as c:
            return c.execute("SELECT 1 FROM kvs_stores WHERE id = ?", (arn[len(prefix):],)).fetchone() is not None

    # ------------------------------------------------------------------ rows -> API shapes
    def _row(self, c: Any, name: str, stage: str) -> dict[str, Any]:
        if stage not in (DEVELOPMENT, LIVE):
            raise api_error("InvalidArgument", "Stage must be DEVELOPMENT or LIVE.")
        cur = c.execute("SELECT * FROM cff_stages WHERE name = ? AND stage = ?", (name, stage))
        row = cur.fetchone()
        if row is None:
            if stage == LIVE and c.execute("SELECT 1 FROM cff_functions WHERE name = ?", (name,)).fetchone():
                raise api_error("NoSuchFunctionExists", f"The function {name} has no LIVE stage: publish it first (PublishFunction).")
            raise api_error("NoSuchFunctionExists", f"The function {name} does not exist: list functions with ListFunctions.")
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def _summary(self, r: dict[str, Any]) -> dict[str, Any]:
        if r["stage"] == LIVE:
            status = "DEPLOYED" if self._in_use(r["name"]) else "UNASSOCIATED"
        else:
            status = "UNASSOCIATED" if r["published"] else "UNPUBLISHED"
        arns = orjson.loads(r["kvs_arns"])
        config: dict[str, Any] = {"Comment": r["comment"], "Runtime": r["runtime"]}
        if arns:
            config["KeyValueStoreAssociations"] = {"Quantity": len(arns), "Items": [{"KeyValueStoreARN": a} for a in arns]}
        return {"Name": r["name"], "Status": status, "FunctionConfig": config,
                "FunctionMetadata": {"FunctionARN": function_arn(r["name"], self.account), "Stage": r["stage"],
                                     "CreatedTime": _dt(r["created"]), "LastModifiedTime": _dt(r["last_modified"])}}

    @staticmethod
    def _if_match(if_match: str | None, current: str) -> None:
        if not if_match:
            raise api_error("InvalidIfMatchVersion", "The If-Match version is missing: pass the ETag from DescribeFunction.")
        if if_match != current:
            raise api_error("PreconditionFailed", "The If-Match version does not match the function's current ETag: describe it again.")

    # ------------------------------------------------------------------ operations
    def create(self, name: str, config: dict[str, Any], code: bytes | str) -> dict[str, Any]:
        comment, runtime, arns, text, warnings = self._validate(name, config, code)
        now, etag = time.time(), new_etag()
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM cff_functions WHERE name = ?", (name,)).fetchone():
                raise api_error("FunctionAlreadyExists", f"A function named {name} already exists: update it or choose another name.")
            if c.execute("SELECT COUNT(*) FROM cff_functions").fetchone()[0] >= MAX_FUNCTIONS:
                raise api_error("TooManyFunctions", f"This account already has {MAX_FUNCTIONS} functions: delete one first.")
            c.execute("INSERT INTO cff_functions (name, created) VALUES (?, ?)", (name, now))
            c.execute("INSERT INTO cff_stages (name, stage, comment, runtime, code, kvs_arns, etag, published, created, last_modified)"
                      " VALUES (?, 'DEVELOPMENT', ?, ?, ?, ?, ?, 0, ?, ?)",
                      (name, comment, runtime, text.encode(), orjson.dumps(arns).decode(), etag, now, now))
            r = self._row(c, name, DEVELOPMENT)
        return {"FunctionSummary": self._summary(r), "ETag": etag,
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/function/{function_arn(name, self.account)}",
                "Warnings": warnings}

    def update(self, name: str, if_match: str | None, config: dict[str, Any], code: bytes | str) -> dict[str, Any]:
        comment, runtime, arns, text, warnings = self._validate(name, config, code)
        with self.db.write() as c:
            r = self._row(c, name, DEVELOPMENT)
            self._if_match(if_match, r["etag"])
            etag, now = new_etag(), time.time()
            c.execute("UPDATE cff_stages SET comment = ?, runtime = ?, code = ?, kvs_arns = ?, etag = ?, published = 0, last_modified = ?"
                      " WHERE name = ? AND stage = 'DEVELOPMENT'",
                      (comment, runtime, text.encode(), orjson.dumps(arns).decode(), etag, now, name))
            r = self._row(c, name, DEVELOPMENT)
        return {"FunctionSummary": self._summary(r), "ETag": etag, "Warnings": warnings}

    def describe(self, name: str, stage: str = DEVELOPMENT) -> dict[str, Any]:
        with self.db.read() as c:
            r = self._row(c, name, stage)
        return {"FunctionSummary": self._summary(r), "ETag": r["etag"]}

    def get(self, name: str, stage: str = DEVELOPMENT) -> dict[str, Any]:
        with self.db.read() as c:
            r = self._row(c, name, stage)
        return {"FunctionCode": bytes(r["code"]), "ETag": r["etag"], "ContentType": "application/octet-stream"}

    def publish(self, name: str, if_match: str | None) -> dict[str, Any]:
        with self.db.write() as c:
            r = self._row(c, name, DEVELOPMENT)
            self._if_match(if_match, r["etag"])
            now, etag = time.time(), new_etag()
            c.execute("INSERT INTO cff_stages (name, stage, comment, runtime, code, kvs_arns, etag, published, created, last_modified)"
                      " VALUES (?, 'LIVE', ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (name, stage) DO UPDATE SET comment = excluded.comment,"
                      " runtime = excluded.runtime, code = excluded.code, kvs_arns = excluded.kvs_arns, etag = excluded.etag,"
                      " last_modified = excluded.last_modified",
                      (name, r["comment"], r["runtime"], r["code"], r["kvs_arns"], etag, r["created"], now))
            c.execute("UPDATE cff_stages SET published = 1 WHERE name = ? AND stage = 'DEVELOPMENT'", (name,))
            live = self._row(c, name, LIVE)
        return {"FunctionSummary": self._summary(live)}

    def list(self, marker: str | None = None, max_items: int = 100, stage: str | None = None) -> dict[str, Any]:
        if stage is not None and stage not in (DEVELOPMENT, LIVE):
            raise api_error("InvalidArgument", "Stage must be DEVELOPMENT or LIVE.")
        with self.db.read() as c:
            cur = c.execute("SELECT * FROM cff_stages WHERE name > ? AND (? IS NULL OR stage = ?) ORDER BY name, stage LIMIT ?",
                            (marker or "", stage, stage, max_items + 1))
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        page = rows[:max_items]
        out: dict[str, Any] = {"MaxItems": max_items, "Quantity": len(page), "Items": [self._summary(r) for r in page]}
        if len(rows) > max_items:
            out["NextMarker"] = page[-1]["name"]
        return {"FunctionList": out}

    def delete(self, name: str, if_match: str | None) -> None:
        with self.db.read() as c:
            self._row(c, name, DEVELOPMENT)
        if self._in_use(name):
            raise api_error("FunctionInUse", f"The function {name} is associated with a distribution: remove the association first.")
        with self.db.write() as c:
            r = self._row(c, name, DEVELOPMENT)
            self._if_match(if_match, r["etag"])
            c.execute("DELETE FROM cff_functions WHERE name = ?", (name,))
        with self._lock:
            for key in [k for k in self._engines if k[0] == name]:
                self._engines.pop(key)[1].close()

    def live(self, name: str) -> LiveFunction | None:
        """The LIVE stage the pipeline runs (None: no such function, or never published)."""
        with self.db.read() as c:
            row = c.execute("SELECT runtime, code, kvs_arns, etag FROM cff_stages WHERE name = ? AND stage = 'LIVE'", (name,)).fetchone()
        if row is None:
            return None
        arns = orjson.loads(row[2])
        return LiveFunction(name=name, arn=function_arn(name, self.account), runtime=row[0], code=bytes(row[1]).decode("utf-8"),
                            kvs_arn=arns[0] if arns else None, etag=row[3])

    # ------------------------------------------------------------------ TestFunction
    def _engine(self, r: dict[str, Any]) -> FunctionEngine:
        key = (r["name"], r["stage"])
        with self._lock:
            cached = self._engines.get(key)
            if cached is not None and cached[0] == r["etag"]:
                return cached[1]
            if cached is not None:
                cached[1].close()
            engine = FunctionEngine(r["name"], bytes(r["code"]).decode("utf-8"), r["runtime"], limits=self.limits)
            self._engines[key] = (r["etag"], engine)
            return engine

    def test(self, name: str, if_match: str | None, event_object: bytes | str, stage: str = DEVELOPMENT) -> dict[str, Any]:
        """TestFunction for one event: ``{"TestResult": {...}}``."""
        return {"TestResult": self.test_many(name, if_match, [event_object], stage)[0]}

    def test_many(self, name: str, if_match: str | None, events: builtins.list[bytes | str],
                  stage: str = DEVELOPMENT) -> builtins.list[dict[str, Any]]:
        """TestFunction for any number of events (edgelab's CLI), each checked and run as AWS would run one."""
        with self.db.read() as c:
            r = self._row(c, name, stage)
        self._if_match(if_match, r["etag"])
        parsed = [self._test_event(e) for e in events]
        engine = self._engine(r)
        arns = orjson.loads(r["kvs_arns"])
        summary = self._summary(r)
        out = []
        for event in parsed:
            kvs = self._kvs_views(arns[0]) if (arns and self._kvs_views is not None) else None
            out.append(self._run_test(engine, event, kvs, summary))
        return out

    @staticmethod
    def _test_event(blob: bytes | str) -> dict[str, Any]:
        raw = blob.encode("utf-8") if isinstance(blob, str) else blob
        if len(raw) > MAX_TEST_EVENT_BYTES:
            raise api_error("InvalidArgument", f"EventObject is {len(raw)} bytes; the maximum is {MAX_TEST_EVENT_BYTES}.")
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise api_error("InvalidArgument", f"EventObject is not valid JSON: {exc}") from None
        if not isinstance(event, dict) or not isinstance(event.get("request"), dict):
            raise api_error("InvalidArgument", "EventObject must be an event object with at least a request (see the event structure).")
        context = event.setdefault("context", {})
        if not isinstance(context, dict) or context.get("eventType") not in EVENT_TYPES:
            raise api_error("InvalidArgument", "EventObject.context.eventType must be viewer-request or viewer-response.")
        if context["eventType"] != VIEWER_REQUEST and not isinstance(event.get("response"), dict):
            raise api_error("InvalidArgument", "A viewer-response EventObject needs a response object.")
        # test-function: distributionDomainName, distributionId and requestId may be omitted
        context.setdefault("distributionDomainName", "d111111abcdef8.cloudfront.net")
        context.setdefault("distributionId", "EDFDVBD6EXAMPLE")
        context.setdefault("requestId", uuid.uuid4().hex)
        event.setdefault("version", "1.0")
        event.setdefault("viewer", {"ip": "1.2.3.4"})
        for field in ("querystring", "headers", "cookies"):
            event["request"].setdefault(field, {})
        return event

    @staticmethod
    def _raw_query(qs: dict[str, Any]) -> str | None:
        """rawQueryString() of a synthetic test event: rebuilt in parameter order (undocumented for TestFunction)."""
        parts: builtins.list[str] = []
        for name, entry in qs.items():
            if isinstance(entry, dict):
                parts.extend(f"{name}={m.get('value', '')}" for m in entry.get("multiValue") or [entry]
                             if isinstance(m, dict))
        return "&".join(parts) if parts else None

    def _run_test(self, engine: FunctionEngine, event: dict[str, Any], kvs: KvsView | None, summary: dict[str, Any]) -> dict[str, Any]:
        inv = engine.invoke(event, raw_query=self._raw_query(event["request"]["querystring"]), kvs=kvs,
                            edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
        output, error = "", ""
        if inv.ok and not isinstance(inv.value, dict):
            returned = "undefined" if inv.value is None else type(inv.value).__name__
            error = f"{EXECUTION_PAGE_LINE} Error: the handler returned {returned}, not an object"
        elif inv.ok:
            value = dict(inv.value)
            kind = "response" if (event["context"]["eventType"] != VIEWER_REQUEST or "statusCode" in value) else "request"
            if kind == "response":
                value.setdefault("cookies", {})  # CloudFront serialises an empty cookies map into responses
            output = orjson.dumps({kind: value}).decode()
        else:
            error = f"{EXECUTION_PAGE_LINE} {inv.error}"
        return {"FunctionSummary": summary, "ComputeUtilization": str(inv.compute_utilization),
                "FunctionExecutionLogs": list(inv.logs), "FunctionErrorMessage": error, "FunctionOutput": output}
