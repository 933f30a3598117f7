"""A plain hit's answer kept per connection (``PopViewer.again``, ``lean.KeptHit``): the same read again on a
keep-alive connection is answered as the pipeline answers it. Two real POPs in front of one scripted origin, one
with its short ways and one answering everything with ``begin``, get the same reads on one keep-alive connection
each: the same request several times in a row (so that the short POP keeps its answer and gives it again; plain
behaviors, and behaviors with a viewer-request or a viewer-response CloudFront function), with what can change the
answer in between (the clock moving past an object's freshness, an invalidation, the origin answering something
else, a distribution applied, a chaos scenario, a function published); their answers are byte for byte the same but
for what differs per request or per POP, and so are their counters and their functions' counts.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from edge.cdn import lean
from edge.cdn.cache.keys import cache_key
from edge.cdn.cache.policy import CacheEntry
from edge.cdn.chaos.scenario import parse_scenario
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
from edge.cdn.config.distribution import load_distribution
from edge.cdn.server.respond import PopViewer
from tests.cdn.scripted_origin import (
    FakeClock,
    PopHarness,
    ScriptedOrigin,
    behavior_config,
    distribution_config,
    pop_settings_for,
)
from tests.cdn.server.test_plain_hits import FUNCTION, FUNCTION_CODE, RESPONSE_CODE, RESPONSE_FUNCTION, runners

__all__ = ["runners"]  # (a fixture: the two POPs' CloudFront Functions runners)

FRESH = {"Cache-Control": "max-age=60", "ETag": '"v1"'}
READS = tuple(f"GET {target} HTTP/{version}\r\nHost: d.example\r\n{extra}\r\n".encode()
              for target, version, extra in (
                  ("/a", "1.1", ""), ("/a", "1.1", "User-Agent: wrk\r\nAccept: */*\r\n"), ("/a?x=1", "1.1", ""),
                  ("/a", "1.0", "Connection: keep-alive\r\n"), ("/v", "1.1", "Accept-Encoding: gzip\r\n"),
                  ("/v", "1.1", "Accept-Encoding: br\r\n"), ("/short", "1.1", ""), ("/", "1.1", ""),
                  ("/a", "1.1", "If-None-Match: \"v1\"\r\n"), ("/gone", "1.1", ""), ("/ck/a", "1.1", "Cookie: s=1\r\n"),
                  ("/https/a", "1.1", ""), ("/cf/a", "1.1", ""), ("/cf/old", "1.1", "X-Custom: v\r\n"),
                  ("/cf/redirect", "1.1", ""), ("/vr/a", "1.1", ""), ("/vr/status", "1.1", ""),
                  ("/cf/a", "1.0", "Connection: keep-alive\r\n")))
CF, VR = READS[12], READS[15]  # behind a viewer-request function (test_plain_hits.FUNCTION_CODE), a viewer-response one
_VARYING = [(re.compile(rb"(X-Amz-Cf-Id: )[A-Za-z0-9_=-]+"), rb"\1ID"), (re.compile(rb"dur=[0-9.]+"), b"dur=T"),
            (re.compile(rb"cu=[0-9]+"), b"cu=U"),
            (re.compile(rb"\r\nDate: [^\r]*"), b"\r\nDate: D"), (re.compile(rb"\r\nVia: [^\r]*"), b"\r\nVia: V"),
            (re.compile(rb"\r\nX-Amz-Cf-Pop: [^\r]*"), b"\r\nPop: P"),
            (re.compile(rb"Request ID: [A-Za-z0-9_=-]+"), b"Request ID: ID")]
CHAOS = parse_scenario('name = "slow"\n[[fault]]\nkind = "origin-latency"\npaths = ["/none/*"]\nlatency_ms = 1\n')


def _normalised(data: bytes) -> bytes:
    for pattern, repl in _VARYING:
        data = pattern.sub(repl, data)
    return data


class _Connection:
    """One keep-alive connection: a read written, the response read (its head, then the body its framing says)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def exchange(self, raw: bytes) -> bytes:
        self.writer.write(raw)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        no_body = re.match(rb"HTTP/1\.[01] (1\d\d|204|304) ", head)
        body = b"" if no_body or length is None else await asyncio.wait_for(
            self.reader.readexactly(int(length.group(1))), 5)
        return head + body

    def close(self) -> None:
        self.writer.close()


def _config(enabled: bool = True) -> dict:
    https = {**behavior_config("/https/*"), "ViewerProtocolPolicy": "redirect-to-https"}
    fn, vr = ({"FunctionAssociations": {"Quantity": 1, "Items": [
        {"FunctionARN": f"arn:aws:cloudfront::123456789012:function/{name}", "EventType": event}]}}
        for name, event in ((FUNCTION, "viewer-request"), (RESPONSE_FUNCTION, "viewer-response")))
    return {**distribution_config(root="a", enabled=enabled, default=behavior_config(), behaviors=[
        behavior_config("/ck/*", cookies="all"), https, {**behavior_config("/cf/*"), **fn},
        {**behavior_config("/vr/*"), **vr}]), "Id": "EKEPTHITS"}


class _Pair:
    """The two POPs (``short``: its short ways; ``full``: ``begin`` answers everything), what the short one's
    ``again`` said each time, a keep-alive connection to each, and what happened, for a failure's message."""

    def __init__(self, origin: ScriptedOrigin, clock: FakeClock, short: PopHarness, full: PopHarness,
                 runners: tuple[CloudFrontFunctionRunner, ...], db_path: Path) -> None:
        self.origin, self.clock, self.short, self.full = origin, clock, short, full
        self.runners, self.db_path = runners, db_path
        self.outcomes: list[bool] = []
        self.kept: object = None  # the last kept answer again() was asked about
        self.history: list[str] = []
        self.conns: list[_Connection] = []

    async def read(self, raw: bytes) -> bytes:
        """``raw`` on both connections: the short POP's answer, checked against the full one's."""
        a, b = [await conn.exchange(raw) for conn in self.conns]
        assert _normalised(a) == _normalised(b), (self.history[-12:], raw, a, b)
        self.history.append(raw.split(b"\r\n")[0].decode() + (" again" if self.outcomes[-1:] == [True] else ""))
        return a

    def each(self, change: str) -> tuple[PopHarness, PopHarness]:
        self.history.append(change)
        return self.short, self.full

    async def publish(self, name: str) -> None:
        """``name``'s code published again (a new ETag): both POPs' runners reload it before the next read."""
        self.history.append(f"{name} published")
        loads = [runner.catalog.loads for runner in self.runners]
        db = CffDatabase(self.db_path)
        try:
            store = FunctionStore(db)
            code = FUNCTION_CODE if name == FUNCTION else RESPONSE_CODE
            etag = store.update(name, store.describe(name)["ETag"], {"Comment": "again",
                                                                     "Runtime": "cloudfront-js-2.0"}, code)["ETag"]
            store.publish(name, etag)
        finally:
            db.close()
        for _ in range(100):
            if all(runner.catalog.loads > n for runner, n in zip(self.runners, loads, strict=True)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("a runner did not reload the published function")


@pytest.fixture
async def pair(monkeypatch: pytest.MonkeyPatch, runners: tuple[CloudFrontFunctionRunner, ...],
               tmp_path: Path) -> AsyncIterator[_Pair]:
    clock = FakeClock()
    async with ScriptedOrigin(clock=clock) as origin, \
            PopHarness(origin, _config(), clock=clock, functions=runners[0]) as short, \
            PopHarness(origin, _config(), clock=clock, functions=runners[1]) as full:
        origin.script("/a", body=b"alpha body", headers=FRESH)
        origin.script("/v", body=b"varied", headers={**FRESH, "Vary": "Accept-Encoding"})
        origin.script("/short", body=b"short-lived", headers={"Cache-Control": "max-age=1"})
        origin.script("/gone", status=404, body=b"gone", headers={"Cache-Control": "max-age=60"})
        origin.script("/ck/a", body=b"cookie keyed", headers=FRESH)
        origin.script("/https/a", body=b"over http", headers=FRESH)
        origin.script("/cf/a", body=b"after a function", headers=FRESH)
        for path in ("/vr/a", "/vr/status"):
            origin.script(path, body=b"through a viewer-response function", headers=FRESH)
        made = _Pair(origin, clock, short, full, runners, tmp_path)
        real_lean, real_again = lean.lean_plan, PopViewer.again

        def lean_plan(ctx, uri, scheme):  # type: ignore[no-untyped-def]
            return None if ctx is full.state.ctx else real_lean(ctx, uri, scheme)  # the full POP: begin answers all

        def again(self: PopViewer, conn, kept) -> bytes | None:  # type: ignore[no-untyped-def]
            assert self.state is short.state  # the full POP keeps nothing
            made.kept = kept
            answer = real_again(self, conn, kept)
            made.outcomes.append(answer is not None)
            return answer

        monkeypatch.setattr(lean, "lean_plan", lean_plan)
        monkeypatch.setattr(PopViewer, "again", again)
        made.conns = [await _Connection.open(pop.port) for pop in (short, full)]
        try:
            yield made
        finally:
            for conn in made.conns:
                conn.close()
        assert short.state.ctx.stats == full.state.ctx.stats
        assert short.state.ctx.store.stats() == full.state.ctx.store.stats()
        counts = [{name: [m[k] for k in ("invocations", "memo_hits", "generated_responses", "execution_errors")]
                   for name, m in runner.metrics().items()} for runner in runners]
        assert counts[0] == counts[1]
        assert not short.state.guard.heads and len(short.state.guard.idles) == 1  # the connection idles


def _apply(pop: PopHarness, enabled: bool = True) -> None:
    pop.state.apply_distribution(load_distribution(_config(enabled), pop_settings_for(pop.origin)[1]))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_kept_answer_is_what_the_pipeline_answers(seed: int, pair: _Pair) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        raw = rng.choice(READS)
        for _ in range(rng.randint(1, 9)):
            await pair.read(raw)
            roll = rng.random()
            if roll < 0.04:
                seconds = rng.choice((0.4, 1.5))
                pair.history.append(f"clock +{seconds}")
                pair.clock.advance(seconds)  # Age moves; /short goes stale
            elif roll < 0.06:
                path = rng.choice(("/a", "/v", "/*"))
                for pop in pair.each(f"invalidated {path}"):
                    pop.state.invalidate([path])
            elif roll < 0.075:
                pair.history.append("origin changed")
                pair.origin.script("/a", body=b"alpha body, again %d" % rng.randrange(100), headers=FRESH)
            elif roll < 0.095:
                enabled = not pair.short.state.ctx.plans.distribution.enabled or rng.random() < 0.7
                for pop in pair.each(f"applied, enabled: {enabled}"):
                    _apply(pop, enabled)
            elif roll < 0.11:
                for pop in pair.each("chaos"):
                    if pop.state.ctx.chaos is None:
                        pop.state.apply_chaos(CHAOS, pair.clock())
                    else:
                        pop.state.clear_chaos()
            elif roll < 0.13:
                await pair.publish(rng.choice((FUNCTION, RESPONSE_FUNCTION)))
            elif roll < 0.14:
                for pop in pair.each("https"):  # from now on the POP has an HTTPS listener to send /https/* viewers to
                    pop.state.ctx.https_port = 8443
    assert pair.outcomes.count(True) >= 40, pair.outcomes.count(True)
    for kind in ("GET / ", "GET /a?x=1 ", "GET /v ", "GET /cf/a ", "GET /cf/old ", "GET /vr/a "):  # given again
        assert any(h.startswith(kind) and h.endswith(" again") for h in pair.history), kind


@pytest.mark.parametrize(("change", "raw"), [
    *((change, READS[0]) for change in ("invalidated", "replaced", "cleared", "applied", "disabled", "chaos")),
    ("stale", READS[6]), ("stale", CF), ("stale", VR), ("invalidated", CF), ("published", CF), ("published", VR)])
async def test_a_kept_answer_is_not_given_once_it_would_differ(change: str, raw: bytes, pair: _Pair) -> None:
    """Each thing that changes the answer to the same request makes ``again`` decline the next time (the request is
    answered as the full POP answers it), and the new answer is kept again from the third time on (``raw``: /a,
    /short (max-age=1) or behind a CloudFront function)."""
    for _ in range(4):  # a miss, a hit parsed, a hit replayed and kept, the kept answer given again
        await pair.read(raw)
    if raw in (CF, VR):  # the function's event answered from memory from its second time, kept by its runner from
        for _ in range(2):  # its third: the POP's answer is kept from the fourth read
            await pair.read(raw)
    assert pair.outcomes[-1] is True and False not in pair.outcomes
    if change == "stale":
        pair.clock.advance(1.5 if raw == READS[6] else 61)
    elif change == "published":
        await pair.publish(FUNCTION if raw == CF else RESPONSE_FUNCTION)
    elif change == "invalidated":
        for pop in pair.each(change):
            pop.state.invalidate(["/*"])
    elif change == "replaced":  # the same key, another entry (as a refresh stores it)
        for pop in pair.each(change):
            ctx = pop.state.ctx
            key = cache_key(ctx.plans.distribution.domain_name, ctx.plans.match("/a").behavior.cache_policy, "GET",
                            "/a", "", [("Host", "d.example")])
            entry = ctx.store.peek(key, [])
            assert entry is not None
            ctx.store.put(key, replace(entry, body=b"replaced"))
    elif change == "cleared":
        for pop in pair.each(change):
            pop.state.reset(stats=False)
        # what a connection keeps does not keep the entry (nor its body) alive once the store let it go
        referents = gc.get_referents(pair.kept)
        assert not [r for r in referents if isinstance(r, CacheEntry) or (isinstance(r, bytes) and b"alpha" in r)]
    elif change in ("applied", "disabled"):
        for pop in pair.each(change):
            _apply(pop, change == "applied")
    else:
        for pop in pair.each(change):
            pop.state.apply_chaos(CHAOS, pair.clock())
    given = len(pair.outcomes)
    answer = await pair.read(raw)
    assert pair.outcomes[given:] == [False]
    assert (b"replaced" in answer) == (change == "replaced")
    if change == "disabled":
        assert answer.startswith(b"HTTP/1.1 403 ")
        return
    if change == "chaos":
        for pop in pair.each("chaos cleared"):
            pop.state.clear_chaos()
    for _ in range(5):
        await pair.read(raw)
    assert pair.outcomes[-1] is True  # kept again
