"""CloudFront functions declared in the settings (``[[cloudfront_functions]]``): created or updated and published at
startup by the control process, and republished when their files change under ``--watch`` (as
``edge.control.stack.declared`` does for Lambda functions).

A declared function is a directory: ``index.js`` (the code) and an optional ``cloudfront-function.json``::

    {"runtime": "cloudfront-js-2.0", "comment": "...", "key_value_store": "NAME"}

(``runtime`` defaults to ``cloudfront-js-2.0``; ``key_value_store`` names a store, created empty when it does not
exist yet). Deploying goes through the same function store as the API (``CreateFunction`` / ``UpdateFunction``
with the DEVELOPMENT ETag, then ``PublishFunction``), so the same checks apply (10 KB, names, runtimes) and the
syntax gate's warnings are logged. Deploying unchanged files changes nothing (same code and configuration: no
update, no new LIVE ETag). POPs see a new LIVE stage through the database within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.cdn.cloudfront_functions.limits import RUNTIME_2
from edge.cdn.config.settings import CloudFrontFunctionDecl

__all__ = ["METADATA_FILE", "deploy_cloudfront_function", "deploy_declared_cloudfront_functions",
           "watch_declared_cloudfront_functions"]

log = logging.getLogger("edgelab.declared")

METADATA_FILE = "cloudfront-function.json"
CODE_FILE = "index.js"


def _function_config(decl: CloudFrontFunctionDecl, kvs: KeyValueStoreService) -> dict[str, Any]:
    meta_path = decl.dir / METADATA_FILE
    meta: Any = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or set(meta) - {"runtime", "comment", "key_value_store"}:
        raise ValueError(f"{meta_path}: expected an object with runtime, comment and key_value_store only")
    config: dict[str, Any] = {"Comment": meta.get("comment", f"declared in the edgelab settings ({decl.dir.name})"),
                              "Runtime": meta.get("runtime", RUNTIME_2)}
    store = meta.get("key_value_store")
    if store is not None:
        try:
            arn = kvs.describe(store)["KeyValueStore"]["ARN"]
        except CloudFrontApiError as exc:
            if exc.code != "EntityNotFound":
                raise
            arn = kvs.create(store, comment=f"created for the declared function {decl.name}")["KeyValueStore"]["ARN"]
            log.info("key value store %s created (empty) for CloudFront function %s", store, decl.name)
        config["KeyValueStoreAssociations"] = {"Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}
    return config


def deploy_cloudfront_function(store: FunctionStore, kvs: KeyValueStoreService, decl: CloudFrontFunctionDecl) -> str:
    """Create or update ``decl`` from its directory and publish it (blocking: SQLite). Returns the LIVE ETag.
    Raises ValueError (files) or CloudFrontApiError (what the API would answer) naming the problem."""
    code_path = decl.dir / CODE_FILE
    try:
        code = code_path.read_bytes()
    except OSError as exc:
        raise ValueError(f"CloudFront function {decl.name}: cannot read {code_path}: {exc.strerror or exc}") from None
    config = _function_config(decl, kvs)
    try:
        current = store.describe(decl.name)
    except CloudFrontApiError as exc:
        if exc.code != "NoSuchFunctionExists":
            raise
        created = store.create(decl.name, config, code)
        warnings, etag = created["Warnings"], created["ETag"]
    else:
        etag = current["ETag"]
        summary = current["FunctionSummary"]
        same = (store.get(decl.name)["FunctionCode"] == code and summary["FunctionConfig"] == config)
        warnings = []
        if not same:
            updated = store.update(decl.name, etag, config, code)
            warnings, etag = updated["Warnings"], updated["ETag"]
        elif summary["Status"] != "UNPUBLISHED":
            return store.describe(decl.name, "LIVE")["ETag"]
    for warning in warnings:
        log.warning("CloudFront function %s (%s): %s - CloudFront accepts this code and fails every request it "
                    "runs for (503 FunctionExecutionError)", decl.name, code_path, warning)
    store.publish(decl.name, etag)
    return store.describe(decl.name, "LIVE")["ETag"]


async def deploy_declared_cloudfront_functions(store: FunctionStore, kvs: KeyValueStoreService,
                                               decls: Sequence[CloudFrontFunctionDecl]) -> None:
    """Deploy every declared function; a failure names the function and stops the startup."""
    for decl in decls:
        try:
            etag = await asyncio.to_thread(deploy_cloudfront_function, store, kvs, decl)
        except CloudFrontApiError as exc:
            raise ValueError(f"CloudFront function {decl.name} ({decl.dir}): {exc.code}: {exc.message}") from None
        log.info("CloudFront function %s deployed from %s (LIVE ETag %s)", decl.name, decl.dir, etag)


def _owner(decls: Sequence[CloudFrontFunctionDecl], changed: Path) -> CloudFrontFunctionDecl | None:
    for decl in decls:
        with contextlib.suppress(ValueError):
            changed.relative_to(decl.dir)
            return decl
    return None


async def watch_declared_cloudfront_functions(store: FunctionStore, kvs: KeyValueStoreService,
                                              decls: Sequence[CloudFrontFunctionDecl], stop: asyncio.Event) -> None:
    """Republish declared functions when their files change, until ``stop`` is set."""
    dirs = [str(d.dir) for d in decls if d.dir.is_dir()]
    if not dirs:
        return
    import watchfiles

    async for changes in watchfiles.awatch(*dirs, stop_event=stop, debounce=200, step=50):
        touched = {decl.name: decl for _, path in changes if (decl := _owner(decls, Path(path)))}
        for decl in touched.values():
            try:
                etag = await asyncio.to_thread(deploy_cloudfront_function, store, kvs, decl)
                log.info("CloudFront function %s changed on disk: republished (LIVE ETag %s)", decl.name, etag)
            except (CloudFrontApiError, ValueError) as exc:
                log.error("CloudFront function %s: redeploy failed: %s", decl.name, exc)
