"""The control process's ``GET /edgelab/v1/logs`` reader: :mod:`edge.control.logs_api.merged` over the stack's
log directory, told what the stack knows (its functions, its distribution, its POPs and the directories of the
declared functions); and ``configure_serve_logging``, the stack's own (console) log, also written to size-rotated
files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.control.logs_api.merged import LogQuery, LogSources, list_groups, read_merged
from edge.control.stack.config import StackConfig
from edge.invocation import LambdaService
from edge.invocation.errors import LambdaError

LogReader = Callable[..., Awaitable[dict[str, Any]]]


def log_view(cfg: StackConfig, service: LambdaService, cloudfront: FunctionStore | None = None) -> LogReader:
    """``read(name=, request_id=, tail=, region=, since_ms=)`` -> ``{"groups", "events"}`` (``UnknownLogName``
    for a name that is neither a function nor a log group); ``name=""`` lists the log groups."""
    root = cfg.state_dir / "logs"
    declared = {d.name: d.dir for d in cfg.settings.functions}
    pops_by_region: dict[str, list[str]] = {}
    for pop in cfg.pops:
        pops_by_region.setdefault(pop.region, []).append(pop.name)
    associated_cff = {a.function_name for b in cfg.distribution.all_behaviors for a in b.function_associations}

    async def sources(name: str) -> LogSources:
        functions = {r.function_name for r in await service.list_functions()} | associated_cff | {
            d.name for d in cfg.settings.cloudfront_functions}
        bare = name.rsplit(".", 1)[-1].rsplit("/", 1)[-1] if name.startswith("/") else name
        if cloudfront is not None and bare not in functions \
                and await asyncio.to_thread(cloudfront.live, bare) is not None:
            functions.add(bare)
        code: dict[str, tuple[set[str], Path | None]] = {}
        if bare in functions:
            try:
                digests = {v.code.sha256_hex for v in await service.list_versions(bare)}
            except LambdaError:  # a CloudFront function, or deleted meanwhile
                digests = set()
            code[bare] = (digests, declared.get(bare))
        return LogSources(functions=functions, distribution_id=cfg.distribution.id, pops_by_region=pops_by_region,
                          code=code)

    async def read(*, name: str, request_id: str | None = None, tail: int = 100, region: str | None = None,
                   since_ms: int | None = None) -> dict[str, Any]:
        assert service.executor is not None
        await service.executor.logs.flush()  # this process's pending lines; the POPs flush every 50 ms
        if not name:
            return {"groups": await asyncio.to_thread(list_groups, root), "events": []}
        query = LogQuery(name=name, request_id=request_id, since_ms=since_ms, tail=tail, region=region)
        src = await sources(name)
        return await asyncio.to_thread(read_merged, root, query, src)

    return read


SERVE_LOG_BYTES = 10 * 1024 * 1024  # one serve log file, before it is rotated
SERVE_LOG_BACKUPS = 3  # rotated files kept: <role>.log.1 .. .3
_installed: list[logging.Handler] = []  # the handlers configure_serve_logging added (replaced on a second call)


def configure_serve_logging(level: str, fmt: str, state_dir: Path | None, role: str) -> Path | None:
    """The stack's own log (``edgelab serve`` and each of its processes): to the console as before and, with a
    ``state_dir``, to ``<state_dir>/serve-logs/<role>.log`` rotated by size (``SERVE_LOG_BYTES``, keeping
    ``SERVE_LOG_BACKUPS`` files; stdlib ``RotatingFileHandler``), one file per process so that no two processes
    rotate the same file. Returns the file's path (None: console only, or the directory cannot be made)."""
    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    formatter = logging.Formatter(fmt)
    console = logging.StreamHandler()
    console.setFormatter(formatter)
    root.addHandler(console)
    _installed.append(console)
    if state_dir is None:
        return None
    path = Path(state_dir) / "serve-logs" / f"{role}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=SERVE_LOG_BYTES, backupCount=SERVE_LOG_BACKUPS,
                                      encoding="utf-8")
    except OSError as exc:
        logging.getLogger("edgelab.logs").warning("serve log not written to %s: %s (console only)", path, exc)
        return None
    handler.setFormatter(formatter)
    root.addHandler(handler)
    _installed.append(handler)
    return path
