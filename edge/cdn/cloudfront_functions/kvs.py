"""CloudFront KeyValueStore: durable stores in the state dir, both management APIs, fast per-process snapshots.

Sources: AWS Developer Guide, CloudFront, ``kvs-with-functions`` / ``kvs-with-functions-create`` (create,
import file format, association), ``cloudfront-limits`` ("Quotas on KeyValueStore": key 512 characters, value
1 KB, store 5 MB), ``functions-custom-methods`` (``get``/``exists``/``meta`` from a function); CloudFront API
Reference ``CreateKeyValueStore``/``DescribeKeyValueStore``/``UpdateKeyValueStore``/``DeleteKeyValueStore``/
``ListKeyValueStores`` (control plane, XML) and the KeyValueStore API ``DescribeKeyValueStore``/``GetKey``/
``PutKey``/``DeleteKey``/``ListKeys``/``UpdateKeys`` (data plane, JSON), as modelled by botocore.

Semantics kept:

* two ETags: the control plane's (``Comment`` changes; If-Match of Update/DeleteKeyValueStore) and the data
  plane's, a version of the whole store: every write returns a new one, and a write whose ``IfMatch`` is not
  the current one fails with ``ConflictException`` (the docs list the error, not its wording: ours);
* ``UpdateKeys`` is all-or-nothing; sizes are counted as UTF-8 bytes of keys and values (``TotalSizeInBytes``);
* import only at creation, from a UTF-8 JSON document ``{"data": [{"key": …, "value": …}, …]}`` (no duplicate
  keys). AWS reads it from S3 (``ImportSource {SourceType: S3, SourceARN}``); edgelab reads a local file, so
  ``SourceARN`` may be ``arn:aws:s3:::bucket/key`` resolved under an S3 directory, or a file path;
* Emulator: stores are READY at once (AWS goes through PROVISIONING).

Reads from functions go through :class:`KvsSnapshots`: one per process, an immutable ``engine.KvsView`` per
store, reloaded when the store's version moves (checked at most every ``poll_interval`` seconds through the
database's change feed), so ``kvs.get`` never touches SQLite on the request path.
"""

from __future__ import annotations

import base64
import builtins
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from edge.cdn.cloudfront_functions.api_errors import api_error
from edge.cdn.cloudfront_functions.db import CffDatabase, new_etag
from edge.cdn.cloudfront_functions.engine import KvsView
from edge.cdn.cloudfront_functions.limits import (
    DEFAULT_ACCOUNT,
    KVS_LIST_DEFAULT_RESULTS,
    KVS_LIST_MAX_RESULTS,
    KVS_MAX_COMMENT,
    KVS_MAX_KEY_CHARS,
    KVS_MAX_STORE_BYTES,
    KVS_MAX_VALUE_BYTES,
    KVS_NAME_RE,
)

__all__ = ["KeyValueStoreService", "KvsLimits", "KvsSnapshots", "kvs_arn", "parse_import"]


@dataclass(frozen=True, slots=True)
class KvsLimits:
    max_key_chars: int = KVS_MAX_KEY_CHARS
    max_value_bytes: int = KVS_MAX_VALUE_BYTES
    max_store_bytes: int = KVS_MAX_STORE_BYTES


def kvs_arn(store_id: str, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:cloudfront::{account}:key-value-store/{store_id}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def parse_import(document: bytes | str, limits: KvsLimits = KvsLimits()) -> list[tuple[str, str]]:
    """Parse AWS's import format ``{"data": [{"key", "value"}, …]}``; raise InvalidArgument naming the problem."""
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > limits.max_store_bytes:
        raise api_error("EntitySizeLimitExceeded", f"The import file is {len(raw)} bytes; the maximum is {limits.max_store_bytes}.")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise api_error("InvalidArgument", f"The import file is not valid UTF-8 JSON: {exc}") from None
    items = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise api_error("InvalidArgument", 'The import file must be a JSON object {"data": [{"key": "...", "value": "..."}]}.')
    out, seen = [], set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("value"), str):
            raise api_error("InvalidArgument", f"data[{i}] must be an object with string key and value.")
        if item["key"] in seen:
            raise api_error("InvalidArgument", f"The import file has the key {item['key']!r} more than once.")
        seen.add(item["key"])
        out.append((item["key"], item["value"]))
    return out


class KeyValueStoreService:
    """Both APIs over one database. Methods return plain dicts shaped like the boto3 responses (minus metadata)."""

    def __init__(self, db: CffDatabase, *, account: str = DEFAULT_ACCOUNT, limits: KvsLimits = KvsLimits(),
                 s3_root: Path | None = None, in_use: Any = None) -> None:
        self.db = db
        self.account = account
        self.limits = limits
        self.s3_root = s3_root
        # in_use(arn) -> bool: is a function associated with it (CannotDeleteEntityWhileInUse)
        self._in_use = in_use or (lambda arn: self._associated(arn))

    # ------------------------------------------------------------------ validation helpers
    def _check_item(self, key: Any, value: Any | None, code: str = "ValidationException") -> None:
        if not isinstance(key, str) or not key or len(key) > self.limits.max_key_chars:
            raise api_error(code, f"Key must be 1 to {self.limits.max_key_chars} characters long.")
        if value is not None:
            if not isinstance(value, str):
                raise api_error(code, "Value must be a string.")
            if len(value.encode("utf-8")) > self.limits.max_value_bytes:
                raise api_error(code, f"Value of key {key!r} is larger than {self.limits.max_value_bytes} bytes.")

    def _store_row(self, c: Any, *, name: str | None = None, arn: str | None = None, plane: str = "control") -> Any:
        if arn is not None:
            prefix = f"arn:aws:cloudfront::{self.account}:key-value-store/"
            if not arn.startswith(prefix):
                if plane == "data":
                    raise api_error("ValidationException", f"{arn!r} is not a key value store ARN of account {self.account}.")
                raise api_error("InvalidArgument", f"{arn!r} is not a key value store ARN of account {self.account}.")
            row = c.execute("SELECT * FROM kvs_stores WHERE id = ?", (arn[len(prefix):],)).fetchone()
        else:
            row = c.execute("SELECT * FROM kvs_stores WHERE name = ?", (name,)).fetchone()
        if row is None:
            if plane == "data":
                raise api_error("ResourceNotFoundException", f"The key value store {arn or name} was not found.")
            raise api_error("EntityNotFound", f"The key value store {name or arn} does not exist: list them with ListKeyValueStores.")
        return row

    def _columns(self, c: Any, row: Any) -> dict[str, Any]:
        cols = [d[0] for d in c.execute("SELECT * FROM kvs_stores LIMIT 0").description]
        return dict(zip(cols, row, strict=True))

    def _summary(self, s: dict[str, Any]) -> dict[str, Any]:
        out = {"Name": s["name"], "Id": s["id"], "Comment": s["comment"], "ARN": kvs_arn(s["id"], self.account),
               "Status": s["status"], "LastModifiedTime": _dt(s["last_modified"])}
        return out

    def _counts(self, c: Any, store_id: str) -> tuple[int, int]:
        n, size = c.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM kvs_items WHERE store_id = ?",
            (store_id,)).fetchone()
        return n, size

    def _associated(self, arn: str) -> bool:
        with self.db.read() as c:
            rows = c.execute("SELECT kvs_arns FROM cff_stages").fetchall()
        return any(arn in orjson.loads(r[0]) for r in rows)

    # ------------------------------------------------------------------ control plane (cloudfront)
    def create(self, name: str, comment: str = "", import_source: dict[str, str] | None = None) -> dict[str, Any]:
        if not isinstance(name, str) or not KVS_NAME_RE.match(name):
            raise api_error("InvalidArgument", "Name must be 1-64 characters: letters, digits, hyphens and underscores.")
        if len(comment) > KVS_MAX_COMMENT:
            raise api_error("InvalidArgument", f"Comment must be at most {KVS_MAX_COMMENT} characters.")
        items: list[tuple[str, str]] = []
        if import_source is not None:
            items = parse_import(self._read_import(import_source), self.limits)
            total = 0
            for key, value in items:
                self._check_item(key, value, "InvalidArgument")
                total += len(key.encode()) + len(value.encode())
            if total > self.limits.max_store_bytes:
                raise api_error("EntitySizeLimitExceeded", f"The imported data is {total} bytes; the maximum is {self.limits.max_store_bytes}.")
        now = time.time()
        store_id = str(uuid.uuid4())
        etag = new_etag()
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM kvs_stores WHERE name = ?", (name,)).fetchone():
                raise api_error("EntityAlreadyExists", f"A key value store named {name!r} already exists: choose another name.")
            c.execute("INSERT INTO kvs_stores (id, name, comment, status, created, last_modified, data_modified, etag, data_etag, version)"
                      " VALUES (?, ?, ?, 'READY', ?, ?, ?, ?, ?, 1)", (store_id, name, comment, now, now, now, etag, new_etag("KV")))
            c.executemany("INSERT INTO kvs_items (store_id, key, value) VALUES (?, ?, ?)", [(store_id, k, v) for k, v in items])
        return {"KeyValueStore": self._summary({"name": name, "id": store_id, "comment": comment, "status": "READY",
                                                "last_modified": now}),
                "ETag": etag, "Location": f"https://cloudfront.amazonaws.com/2020-05-31/key-value-store/{name}"}

    def _read_import(self, source: dict[str, str]) -> bytes:
        if source.get("SourceType") != "S3" or not isinstance(source.get("SourceARN"), str):
            raise api_error("InvalidArgument", "ImportSource must be {SourceType: S3, SourceARN: arn:aws:s3:::bucket/key}.")
        arn = source["SourceARN"]
        if arn.startswith("arn:aws:s3:::"):
            if self.s3_root is None:
                raise api_error("InvalidArgument", f"{arn}: no local S3 directory is configured to read it from.")
            path = (self.s3_root / arn[len("arn:aws:s3:::"):]).resolve()
            if not path.is_relative_to(self.s3_root.resolve()):
                raise api_error("InvalidArgument", f"{arn} points outside the local S3 directory.")
        else:
            path = Path(arn)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise api_error("InvalidArgument", f"Cannot read the import file {arn}: {exc.strerror}.") from None

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.read() as c:
            s = self._columns(c, self._store_row(c, name=name))
        return {"KeyValueStore": self._summary(s), "ETag": s["etag"]}

    def update(self, name: str, comment: str, if_match: str | None) -> dict[str, Any]:
        if len(comment) > KVS_MAX_COMMENT:
            raise api_error("InvalidArgument", f"Comment must be at most {KVS_MAX_COMMENT} characters.")
        with self.db.write() as c:
            s = self._columns(c, self._store_row(c, name=name))
            self._if_match(if_match, s["etag"])
            etag, now = new_etag(), time.time()
            c.execute("UPDATE kvs_stores SET comment = ?, etag = ?, last_modified = ? WHERE id = ?", (comment, etag, now, s["id"]))
            s.update(comment=comment, last_modified=now)
        return {"KeyValueStore": self._summary(s), "ETag": etag}

    def delete(self, name: str, if_match: str | None) -> None:
        with self.db.read() as c:
            s = self._columns(c, self._store_row(c, name=name))
        if self._in_use(kvs_arn(s["id"], self.account)):
            raise api_error("CannotDeleteEntityWhileInUse",
                            f"The key value store {name} is associated with a function: remove the association first.")
        with self.db.write() as c:
            s = self._columns(c, self._store_row(c, name=name))
            self._if_match(if_match, s["etag"])
            c.execute("DELETE FROM kvs_stores WHERE id = ?", (s["id"],))

    def list(self, marker: str | None = None, max_items: int = 100) -> dict[str, Any]:
        with self.db.read() as c:
            rows = c.execute("SELECT * FROM kvs_stores WHERE name > ? ORDER BY name LIMIT ?", (marker or "", max_items + 1)).fetchall()
            stores = [self._columns(c, r) for r in rows]
        page = stores[:max_items]
        out: dict[str, Any] = {"MaxItems": max_items, "Quantity": len(page), "Items": [self._summary(s) for s in page]}
        if len(stores) > max_items:
            out["NextMarker"] = page[-1]["name"]
        return {"KeyValueStoreList": out}

    @staticmethod
    def _if_match(if_match: str | None, current: str) -> None:
        if not if_match:
            raise api_error("InvalidIfMatchVersion", "The If-Match version is missing: pass the ETag from the last Describe call.")
        if if_match != current:
            raise api_error("PreconditionFailed", "The If-Match version does not match the current ETag: describe the resource again.")

    # ------------------------------------------------------------------ data plane (cloudfront-keyvaluestore)
    def _data_meta(self, c: Any, s: dict[str, Any]) -> dict[str, Any]:
        n, size = self._counts(c, s["id"])
        return {"ItemCount": n, "TotalSizeInBytes": size}

    def kvs_describe(self, arn: str) -> dict[str, Any]:
        with self.db.read() as c:
            s = self._columns(c, self._store_row(c, arn=arn, plane="data"))
            meta = self._data_meta(c, s)
        return {**meta, "KvsARN": arn, "Created": _dt(s["created"]), "ETag": s["data_etag"],
                "LastModified": _dt(s["data_modified"]), "Status": s["status"]}

    def get_key(self, arn: str, key: str) -> dict[str, Any]:
        with self.db.read() as c:
            s = self._columns(c, self._store_row(c, arn=arn, plane="data"))
            row = c.execute("SELECT value FROM kvs_items WHERE store_id = ? AND key = ?", (s["id"], key)).fetchone()
            if row is None:
                raise api_error("ResourceNotFoundException", f"The key {key!r} does not exist in {arn}.")
            meta = self._data_meta(c, s)
        return {"Key": key, "Value": row[0], **meta}

    def list_keys(self, arn: str, next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
        limit = KVS_LIST_DEFAULT_RESULTS if max_results is None else max_results
        if not 1 <= limit <= KVS_LIST_MAX_RESULTS:
            raise api_error("ValidationException", f"MaxResults must be from 1 to {KVS_LIST_MAX_RESULTS}.")
        after = ""
        if next_token:
            try:
                after = base64.urlsafe_b64decode(next_token.encode()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise api_error("ValidationException", "NextToken is not one this API returned.") from None
        with self.db.read() as c:
            s = self._columns(c, self._store_row(c, arn=arn, plane="data"))
            rows = c.execute("SELECT key, value FROM kvs_items WHERE store_id = ? AND key > ? ORDER BY key LIMIT ?",
                             (s["id"], after, limit + 1)).fetchall()
        out: dict[str, Any] = {"Items": [{"Key": k, "Value": v} for k, v in rows[:limit]]}
        if len(rows) > limit:
            out["NextToken"] = base64.urlsafe_b64encode(rows[limit - 1][0].encode("utf-8")).decode()
        return out

    def put_key(self, arn: str, key: str, value: str, if_match: str | None) -> dict[str, Any]:
        return self.update_keys(arn, if_match, puts=[{"Key": key, "Value": value}], deletes=[])

    def delete_key(self, arn: str, key: str, if_match: str | None) -> dict[str, Any]:
        return self.update_keys(arn, if_match, puts=[], deletes=[{"Key": key}], must_exist=True)

    def update_keys(self, arn: str, if_match: str | None, puts: builtins.list[dict[str, Any]] | None = None,
                    deletes: builtins.list[dict[str, Any]] | None = None, *, must_exist: bool = False) -> dict[str, Any]:
        """All-or-nothing batch of puts and deletes, guarded by the store's data ETag."""
        puts, deletes = puts or [], deletes or []
        if not if_match:
            raise api_error("ValidationException", "IfMatch is required: pass the ETag of the last read or write.")
        for p in puts:
            self._check_item(p.get("Key"), p.get("Value"))
        for d in deletes:
            self._check_item(d.get("Key"), None)
        with self.db.write() as c:
            s = self._columns(c, self._store_row(c, arn=arn, plane="data"))
            if if_match != s["data_etag"]:
                raise api_error("ConflictException",
                                "The store changed since that ETag (IfMatch): read it again (DescribeKeyValueStore) and retry.")
            for d in deletes:
                cur = c.execute("DELETE FROM kvs_items WHERE store_id = ? AND key = ?", (s["id"], d["Key"]))
                if must_exist and cur.rowcount == 0:
                    raise api_error("ResourceNotFoundException", f"The key {d['Key']!r} does not exist in {arn}.")
            c.executemany("INSERT INTO kvs_items (store_id, key, value) VALUES (?, ?, ?) "
                          "ON CONFLICT (store_id, key) DO UPDATE SET value = excluded.value",
                          [(s["id"], p["Key"], p["Value"]) for p in puts])
            meta = self._data_meta(c, s)
            if meta["TotalSizeInBytes"] > self.limits.max_store_bytes:
                raise api_error("ServiceQuotaExceededException",
                                f"The store would hold {meta['TotalSizeInBytes']} bytes; the maximum is {self.limits.max_store_bytes}.")
            etag = new_etag("KV")
            c.execute("UPDATE kvs_stores SET data_etag = ?, version = version + 1, data_modified = ? WHERE id = ?",
                      (etag, time.time(), s["id"]))
        return {**meta, "ETag": etag}


class KvsSnapshots:
    """Per-process, read-only views of key value stores for functions (the request path never reads SQLite).

    :meth:`view` returns the current ``KvsView`` of a store ARN; at most every ``poll_interval`` seconds it asks
    the database whether anything changed (``PRAGMA data_version``, then the store's ``version``) and reloads the
    stores that did. A write in another process is therefore seen within ``poll_interval`` (default 0.2 s).
    """

    def __init__(self, db: CffDatabase, *, account: str = DEFAULT_ACCOUNT, poll_interval: float = 0.2) -> None:
        self.db = db
        self.account = account
        self.poll_interval = poll_interval
        self._views: dict[str, KvsView | None] = {}
        self._versions: dict[str, int] = {}
        self._checked = 0.0
        self._data_version = -1
        self._lock = threading.Lock()

    def view(self, arn: str) -> KvsView | None:
        now = time.monotonic()
        if now - self._checked >= self.poll_interval:
            self.refresh()
        if arn in self._views:
            return self._views[arn]
        return self._load(arn)

    def refresh(self) -> None:
        """Reload the stores that changed since the last look (cheap when nothing did)."""
        with self._lock:
            self._checked = time.monotonic()
            version = self.db.data_version()
            if version == self._data_version:
                return
            self._data_version = version
            arns = list(self._views)
        for arn in arns:
            store_id = arn.rsplit("/", 1)[-1]
            with self.db.read() as c:
                row = c.execute("SELECT version FROM kvs_stores WHERE id = ?", (store_id,)).fetchone()
            if row is None or row[0] != self._versions.get(arn):
                self._load(arn)

    def invalidate(self) -> None:
        """Forget everything (our own writes do not move our connection's data_version)."""
        with self._lock:
            self._views.clear()
            self._versions.clear()
            self._data_version = -1

    def _load(self, arn: str) -> KvsView | None:
        store_id = arn.rsplit("/", 1)[-1]
        with self.db.read() as c:
            row = c.execute("SELECT version, created, data_modified FROM kvs_stores WHERE id = ?", (store_id,)).fetchone()
            items = c.execute("SELECT key, value FROM kvs_items WHERE store_id = ?", (store_id,)).fetchall() if row else []
        if row is None or not arn.startswith(f"arn:aws:cloudfront::{self.account}:key-value-store/"):
            view = None
        else:
            data = dict(items)
            view = KvsView(store_id=store_id, generation=row[0], data=data,
                           meta={"creationDateTime": _iso(row[1]), "lastUpdatedDateTime": _iso(row[2]), "keyCount": len(data)})
        with self._lock:
            self._views[arn] = view
            self._versions[arn] = -1 if view is None else view.generation
        return view
