"""Functions declared in the local settings (``[[functions]]``): created/updated and published at startup, and
republished when their files change under ``--watch``.

Deploying is idempotent: the directory is zipped deterministically, so unchanged files give the same
CodeSha256, and publishing with nothing changed returns the existing version (AWS's rule). A first start on an
empty state directory therefore publishes version 1 of each function, which is what the demo distribution's
associations reference; later starts with unchanged files keep that version.

Under ``--watch`` a change in a function's directory updates ``$LATEST`` and publishes a new version; the POPs'
registry change feed retires the environments of the old ``$LATEST`` revision, so the next call of ``$LATEST``
(or of an alias moved to the new version) is a cold start and says so in its ``Server-Timing`` entry. The POPs
also re-point the declared functions' version-pinned associations to the newest published version (a local
extension: CloudFront keeps running the pinned version until the distribution names another one; see
:mod:`edge.cdn.lambda_edge.runner`), so the next request runs the new version, cold. :func:`watch_declared` says on
the console which associations were re-pointed. Without ``--watch`` the POPs warn about every association that
pins a version older than the newest published one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.cdn.config.settings import FunctionDecl
from edge.invocation import LambdaService
from edge.invocation.errors import LambdaError, ResourceNotFoundException

log = logging.getLogger("edgelab.declared")

EDGE_ROLE = "arn:aws:iam::000000000000:role/edgelab-lambda-edge"


def _config_params(decl: FunctionDecl) -> dict[str, Any]:
    return {"Runtime": decl.runtime, "Handler": decl.handler, "MemorySize": decl.memory,
            "Timeout": int(decl.timeout), "Role": EDGE_ROLE}


def _differs(record: Any, params: dict[str, Any]) -> bool:
    cfg = getattr(record, "config", None)
    if cfg is None:
        return True
    return (cfg.runtime, cfg.handler, cfg.memory_size, cfg.timeout) != (
        params["Runtime"], params["Handler"], params["MemorySize"], params["Timeout"])


async def deploy_function(service: LambdaService, decl: FunctionDecl) -> str:
    """Create or update ``decl`` from its directory; publish when asked. Returns the version now current."""
    if not decl.dir.is_dir():
        raise ValueError(f"function {decl.name}: directory {decl.dir} does not exist")
    params = _config_params(decl)
    try:
        record, _ = await service.get_function_configuration(decl.name)
    except ResourceNotFoundException:
        record = await service.create_function({"FunctionName": decl.name, **params, "Publish": decl.publish},
                                               code_dir=decl.dir)
        return str(record.version)
    if _differs(record, params):
        await service.update_function_configuration(decl.name, params)
    await service.update_function_code(decl.name, {}, code_dir=decl.dir)
    if decl.publish:
        published = await service.publish_version(decl.name)
        return str(published.version)
    return "$LATEST"


async def deploy_declared(service: LambdaService, decls: Sequence[FunctionDecl]) -> dict[str, str]:
    """Deploy every declared function; a failure names the function and stops the startup."""
    out: dict[str, str] = {}
    for decl in decls:
        try:
            out[decl.name] = await deploy_function(service, decl)
        except LambdaError as exc:
            raise ValueError(f"function {decl.name} ({decl.dir}): {exc.__class__.__name__}: {exc}") from None
        log.info("function %s deployed from %s: version %s", decl.name, decl.dir, out[decl.name])
    return out


def _owner(decls: Sequence[FunctionDecl], changed: Path) -> FunctionDecl | None:
    for decl in decls:
        with contextlib.suppress(ValueError):
            changed.relative_to(decl.dir)
            return decl
    return None


def repointed(pins: Mapping[str, Sequence[tuple[str, str, str]]], name: str, version: str) -> str:
    """The console's account of what ``--watch`` re-points when ``name`` is at ``version``: its associations
    (``pins``: function name -> (event type, path pattern, pinned qualifier)) that pin an older version."""
    moved = [f"{event_type} of {pattern!r} (pins :{qualifier})" for event_type, pattern, qualifier in pins.get(name, ())
             if qualifier.isdigit() and version.isdigit() and int(qualifier) < int(version)]
    if not moved:
        return ""
    return f"; every POP re-points {', '.join(moved)} to :{version} (--watch; CloudFront would need a distribution update)"


async def watch_declared(service: LambdaService, decls: Sequence[FunctionDecl], stop: asyncio.Event, *,
                         pins: Mapping[str, Sequence[tuple[str, str, str]]] | None = None) -> None:
    """Republish declared functions when their files change, until ``stop`` is set. ``pins``: the distribution's
    version-pinned associations per function name, for the console line saying what the POPs re-point."""
    if not decls:
        return
    pins = pins or {}
    for declared in decls:  # what the POPs re-point right now (a restart after edits made without --watch)
        with contextlib.suppress(LambdaError):
            versions = [v.version for v in await service.list_versions(declared.name) if str(v.version).isdigit()]
            newest = str(max(int(v) for v in versions)) if versions else ""
            if note := repointed(pins, declared.name, newest):
                log.warning("function %s is at version %s%s", declared.name, newest, note)
    import watchfiles

    dirs = [str(d.dir) for d in decls if d.dir.is_dir()]
    async for changes in watchfiles.awatch(*dirs, stop_event=stop, debounce=200, step=50):
        touched = {decl.name: decl for _, path in changes if (decl := _owner(decls, Path(path)))}
        for decl in touched.values():
            try:
                version = await deploy_function(service, decl)
                log.warning("function %s changed on disk: $LATEST updated, now at version %s%s", decl.name, version,
                            repointed(pins, decl.name, version))
            except (LambdaError, ValueError) as exc:  # e.g. a syntax error is fine, a vanished dir is not
                log.error("function %s: redeploy failed: %s", decl.name, exc)
