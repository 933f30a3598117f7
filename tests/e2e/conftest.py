"""End-to-end fixtures for Lambda@Edge triggers: a real stack slice in the test's event loop.

``edge`` yields an :class:`EdgeStack`: a temp state dir, a ``LambdaService`` for ``us-east-1`` with a real
``Executor`` (real worker processes, short idle TTL), a ``ScriptedOrigin`` (real aiohttp server, counts hits)
and, once ``await edge.start(...)`` is called, a real POP (``start_pop`` on 127.0.0.1:0) wired exactly like
``edge.control.stack.pop_node`` does it: ``EdgeTriggerRunner(service, region=, facts=facts_lookup(service),
validation_log=...)``.

Functions are written as AWS ones (``def handler(event, context)`` in ``index.py``) into ``tmp_path`` or taken
from ``functions/<name>``, then created and published through the service API (``create_function`` with
``Publish``), so the registry, code store and executor are the production ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import textwrap
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import EdgeSwitches, OriginTarget
from edge.cdn.lambda_edge.runner import EdgeTriggerRunner
from edge.cdn.server.pop import RunningPop, start_pop
from edge.control.stack.pop_node import facts_lookup
from edge.invocation.execution.executor import Executor, ExecutorSettings
from edge.invocation.service.facade import LambdaService
from tests.cdn.scripted_origin import (
    ORIGIN_DOMAIN,
    ScriptedOrigin,
    behavior_config,
    distribution_config,
    pop_settings_for,
)

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO / "functions"
ACCOUNT = "000000000000"
VR, OR, ORS, VRS = "viewer-request", "origin-request", "origin-response", "viewer-response"
DIST_ID = "EDFDVBD6EXAMPLE"
DIST_DOMAIN = "d111111abcdef8.cloudfront.net"

_TIMING_RE = re.compile(r'fn-(?P<event>[a-z-]+);desc="(?P<name>[^:"]+):(?P<version>[^ "]+) (?P<state>cold|warm)'
                        r'(?: init=(?P<init>[0-9.]+))?";dur=(?P<dur>[0-9.]+)')


def arn(name: str, qualifier: str | int) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}:{qualifier}"


def assoc(event_type: str, name: str, qualifier: str | int = 1, *, include_body: bool = False) -> dict[str, Any]:
    """One LambdaFunctionAssociations item (CloudFront API field names)."""
    return {"LambdaFunctionARN": arn(name, qualifier), "EventType": event_type, "IncludeBody": include_body}


def with_associations(behavior: dict[str, Any], items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    items = list(items)
    return {**behavior, "LambdaFunctionAssociations": {"Quantity": len(items), "Items": items}}


def fn_timings(headers: Mapping[str, str] | Any) -> list[dict[str, str]]:
    """The ``fn-<event>`` Server-Timing entries of a response: event, name, version, state, init, dur."""
    values = headers.getall("Server-Timing", []) if hasattr(headers, "getall") else [headers.get("Server-Timing", "")]
    return [m.groupdict() for v in values for m in _TIMING_RE.finditer(v)]


def fn_events(headers: Any) -> list[str]:
    return [t["event"] for t in fn_timings(headers)]


class EdgeStack:
    """A service + executor + scripted origin (+ a POP after ``start``); see the module docstring."""

    def __init__(self, tmp: Path, *, region: str = "us-east-1") -> None:
        self.tmp = tmp
        self.region = region
        self.state_dir = tmp / "state"
        self.executor = Executor(ExecutorSettings(state_dir=self.state_dir, idle_ttl_s=30.0,
                                                  log_flush_interval_s=0.02))
        self.service = LambdaService(self.state_dir, region=region, executor=self.executor)
        self._control: LambdaService | None = None
        self._revisions: dict[str, int] = {}
        self.origin = ScriptedOrigin()
        self.extra_origins: dict[str, ScriptedOrigin] = {}
        self.runner: EdgeTriggerRunner | None = None
        self.pop: RunningPop | None = None
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> EdgeStack:
        await self.service.start()
        await self.origin.start()
        self.session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def close(self) -> None:
        """Stop everything, in reverse order of dependence; every step runs even if an earlier one fails
        (the executor's worker processes must always be reaped)."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.service.close)
            if self._control is not None:
                stack.push_async_callback(self._control.close)
            stack.push_async_callback(self.origin.stop)
            for o in self.extra_origins.values():
                stack.push_async_callback(o.stop)
            if self.pop is not None:
                stack.push_async_callback(self.pop.stop)
            if self.session is not None:
                stack.push_async_callback(self.session.close)

    async def control(self) -> LambdaService:
        """A second service on the same state dir without an executor: the control process's view. Changes
        made through it reach the POP's service only through the registry's change feed, as in production."""
        if self._control is None:
            self._control = LambdaService(self.state_dir, region="us-east-1")
            await self._control.start()
        return self._control

    # --- functions ------------------------------------------------------------------------------------
    def write_code(self, name: str, source: str, *, rev: int = 0, module: str = "index") -> Path:
        d = self.tmp / "code" / f"{name}-{rev}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{module}.py").write_text(textwrap.dedent(source))
        return d

    async def function(self, name: str, source: str | None = None, *, example: str | None = None,
                       timeout: float = 3, memory: int = 128, publish: bool = True,
                       handler: str = "index.handler", **params: Any) -> str:
        """Create ``name`` from ``source`` (the text of ``<module>.py``, module from ``handler``) or
        ``functions/<example>``; returns its version (``"1"`` when published, else ``"$LATEST"``)."""
        module = handler.rsplit(".", 1)[0]
        code_dir = FUNCTIONS_DIR / example if example else self.write_code(name, source or "", module=module)
        rec = await self.service.create_function(
            {"FunctionName": name, "Runtime": "python3.11", "Handler": handler, "Timeout": timeout,
             "MemorySize": memory, "Publish": publish, **params}, code_dir=code_dir)
        return rec.version

    async def update(self, name: str, source: str, *, publish: bool = True) -> str:
        """Update the code of ``name`` through the control-side service; returns the new version."""
        rev = self._revisions[name] = self._revisions.get(name, 0) + 1
        rec = await (await self.control()).update_function_code(name, {"Publish": publish},
                                                                code_dir=self.write_code(name, source, rev=rev))
        return rec.version

    # --- the POP --------------------------------------------------------------------------------------
    async def start(self, *, associations: Iterable[dict[str, Any]] = (), default: dict[str, Any] | None = None,
                    behaviors: list[dict[str, Any]] | None = None, config: dict[str, Any] | None = None,
                    allow_unpublished: bool = False, relax: bool = False,
                    origins: Mapping[str, ScriptedOrigin] | None = None, clock: Any = None,
                    api_port: int | None = None, functions: Any = None, **dist_kw: Any) -> RunningPop:
        """Start the POP on a distribution whose default behavior carries ``associations``."""
        if config is None:
            base = default if default is not None else behavior_config()
            config = distribution_config(default=with_associations(base, associations), behaviors=behaviors,
                                         **dist_kw)
        if "DistributionConfig" in config:  # give it a known Id and domain (config.distributionId in events)
            config = {"Distribution": {"Id": DIST_ID, "DomainName": DIST_DOMAIN,
                                       "DistributionConfig": config["DistributionConfig"]}}
        pop, settings = pop_settings_for(self.origin)
        pop = dataclasses.replace(pop, region=self.region)
        settings = dataclasses.replace(settings, pops=(pop,))
        mapped = dict(settings.origins)
        for domain, o in (origins or {}).items():
            self.extra_origins[domain] = o
            mapped[domain] = OriginTarget(host="127.0.0.1", port=o.port)
        settings = dataclasses.replace(settings, origins=mapped, edge=EdgeSwitches(
            allow_unpublished_qualifiers=allow_unpublished, relax_limits=relax))
        if api_port is not None:  # the control port (function URL origins are served there)
            settings = dataclasses.replace(settings, api_port=api_port)
        dist = load_distribution(config, settings)
        logs = self.executor.logs
        self.runner = EdgeTriggerRunner(
            self.service, region=self.region, facts=facts_lookup(self.service),
            validation_log=lambda group, rid, lines: logs.append(group, f"{self.region}/TST", lines, rid),
            relax_limits=relax)
        self.pop = await start_pop(pop, dist, settings, triggers=self.runner, port=0, clock=clock,
                                   functions=functions)  # CloudFront Functions: a runner the test started
        return self.pop

    @property
    def distribution(self):  # type: ignore[no-untyped-def]
        assert self.pop is not None
        return self.pop.state.ctx.distribution

    @property
    def url(self) -> str:
        assert self.pop is not None
        return f"http://127.0.0.1:{self.pop.port}"

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any, bytes]:
        assert self.session is not None
        async with self.session.request(method, self.url + path, allow_redirects=False, **kw) as resp:
            return resp.status, resp.headers, await resp.read()

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, bytes]:
        return await self.request("GET", path, **kw)

    async def logs(self, group: str, **kw: Any) -> list[str]:
        await self.executor.logs.flush()
        return [str(e["message"]) for e in await self.executor.logs.aread(group, **kw)]

    async def validation_lines(self) -> list[str]:
        return await self.logs(f"/aws/cloudfront/LambdaEdge/{self.distribution.id}")


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[EdgeStack]:
    """The stack slice of an IAD-like POP (region us-east-1)."""
    stack = EdgeStack(tmp_path)
    try:
        yield await stack.open()
    finally:
        await stack.close()


@pytest.fixture
async def edge_fra(tmp_path: Path) -> AsyncIterator[EdgeStack]:
    """The stack slice of a FRA-like POP: its own LambdaService for eu-central-1 (the registry is global)."""
    stack = EdgeStack(tmp_path, region="eu-central-1")
    try:
        yield await stack.open()
    finally:
        await stack.close()


__all__ = [
    "ACCOUNT",
    "DIST_DOMAIN",
    "DIST_ID",
    "OR",
    "ORIGIN_DOMAIN",
    "ORS",
    "VR",
    "VRS",
    "EdgeStack",
    "arn",
    "assoc",
    "behavior_config",
    "fn_events",
    "fn_timings",
    "with_associations",
]
