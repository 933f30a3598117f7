"""``edgelab replay``: a request log sent to a running stack's POPs, timing preserved, and compared with the log.

Each record goes to the POP :class:`~edge.control.replay.popmap.PopMap` picks for its edge location, at
``(ts - first ts) / speed`` seconds after the start (``speed`` 0: as fast as the concurrency bound allows), with
its method, path, query string and the headers the log records (User-Agent, Referer, Cookie), plus
``Accept-Encoding: gzip, deflate, br`` (not logged; what browsers send). At most ``concurrency`` requests are in
flight; a request that cannot keep its time waits for a slot (the report says how late the replay ran).

The comparison: edgelab's ``X-Cache`` first word (Hit, Miss, RefreshHit, Error, LambdaGeneratedResponse) against
the logged ``x-edge-result-type``, and edgelab's status against ``sc-status``
("Standard logging reference", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html#BasicDistributionFileFormat),
grouped by the behavior path pattern the request's path selects (with ``--distribution``) and the POP.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from edge.cdn.config.plan import DistributionPlan
from edge.control.replay.popmap import PopMap
from edge.control.replay.readers import ReadStats
from edge.control.replay.records import LogRecord, result_of_x_cache
from edge.tasks import TaskOwner

__all__ = ["ACCEPT_ENCODING", "Outcome", "ReplayReport", "replay"]

ACCEPT_ENCODING = "gzip, deflate, br"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One replayed request: what the log says and what edgelab answered."""

    rec: LogRecord
    pop: str
    pattern: str
    status: int  # 0: no answer (``error`` says why)
    result: str  # X-Cache's first word, "" when absent
    error: str = ""

    @property
    def agrees(self) -> bool:
        return not self.error and self.status == self.rec.status and self.result == self.rec.result_type


@dataclass(slots=True)
class Group:
    requests: int = 0
    agree: int = 0
    status_agree: int = 0
    result_agree: int = 0
    recorded: Counter[str] = field(default_factory=Counter)  # logged result types
    edgelab: Counter[str] = field(default_factory=Counter)  # X-Cache first words ("no answer" for failures)

    def add(self, o: Outcome) -> None:
        self.requests += 1
        self.agree += o.agrees
        self.status_agree += not o.error and o.status == o.rec.status
        self.result_agree += not o.error and o.result == o.rec.result_type
        self.recorded[o.rec.result_type or "-"] += 1
        self.edgelab[("no answer" if o.error else o.result or "-")] += 1

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "agree": self.agree, "status_agree": self.status_agree,
                "result_agree": self.result_agree, "recorded": dict(self.recorded), "edgelab": dict(self.edgelab)}


@dataclass(slots=True)
class ReplayReport:
    stats: ReadStats
    outcomes: list[Outcome]
    pop_map: dict[str, str]
    speed: float
    seconds: float
    max_lag: float  # the latest a request was sent after its due time, seconds
    max_listed: int = 20

    def groups(self) -> dict[tuple[str, str], Group]:
        out: dict[tuple[str, str], Group] = {}
        for o in self.outcomes:
            out.setdefault((o.pattern, o.pop), Group()).add(o)
        return dict(sorted(out.items()))

    def by_pop(self) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for o in self.outcomes:
            out.setdefault(o.pop, Group()).add(o)
        return dict(sorted(out.items()))

    def disagreements(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.agrees]

    def as_json(self) -> dict[str, Any]:
        bad = self.disagreements()
        return {"log": self.stats.as_json(), "speed": self.speed, "seconds": round(self.seconds, 3),
                "max_lag_s": round(self.max_lag, 3), "pop_map": self.pop_map,
                "total": _total(self.outcomes).as_json(),
                "pops": {pop: g.as_json() for pop, g in self.by_pop().items()},
                "groups": [{"pattern": pat, "pop": pop, **g.as_json()} for (pat, pop), g in self.groups().items()],
                "disagreements": len(bad),
                "disagreeing": [_outcome_json(o) for o in bad[:self.max_listed]]}

    def text(self) -> str:
        total = _total(self.outcomes)
        lines = [self.stats.summary(),
                 f"replayed {total.requests:,} requests in {self.seconds:.1f} s (speed {self.speed:g}x; at most "
                 f"{self.max_lag:.2f} s behind schedule)",
                 "edge locations -> POPs: " + ", ".join(f"{k}->{v}" for k, v in self.pop_map.items()),
                 f"agree (result type and status): {total.agree:,} of {total.requests:,}"
                 f" ({_pct(total.agree, total.requests)}); result type {_pct(total.result_agree, total.requests)}, "
                 f"status {_pct(total.status_agree, total.requests)}", "",
                 f"{'behavior':<16} {'POP':<5} {'requests':>8} {'agree':>7}  {'recorded':<30} edgelab"]
        for (pattern, pop), g in self.groups().items():
            lines.append(f"{pattern:<16} {pop:<5} {g.requests:>8,} {_pct(g.agree, g.requests):>7}  "
                         f"{_counts(g.recorded):<30} {_counts(g.edgelab)}")
        bad = self.disagreements()
        if bad:
            lines += ["", f"{len(bad):,} requests disagree" + (f" (first {self.max_listed} listed)"
                                                               if len(bad) > self.max_listed else "") + ":"]
            for o in bad[:self.max_listed]:
                got = f"no answer ({o.error})" if o.error else f"{o.result or '-'} {o.status}"
                lines.append(f"  line {o.rec.line}: {o.pop} {o.rec.method} {_url(o.rec)}  log: "
                             f"{o.rec.result_type or '-'} {o.rec.status}  edgelab: {got}")
        return "\n".join(lines)


def _url(rec: LogRecord) -> str:
    return rec.uri + (f"?{rec.query}" if rec.query else "")


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {"line": o.rec.line, "pop": o.pop, "location": o.rec.location, "method": o.rec.method,
            "url": _url(o.rec), "pattern": o.pattern, "recorded": {"result": o.rec.result_type, "status": o.rec.status},
            "edgelab": {"result": o.result, "status": o.status, **({"error": o.error} if o.error else {})}}


def _total(outcomes: Sequence[Outcome]) -> Group:
    g = Group()
    for o in outcomes:
        g.add(o)
    return g


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "-"


def _counts(c: Counter[str]) -> str:
    return " ".join(f"{k} {v}" for k, v in c.most_common())


async def _send(session: aiohttp.ClientSession, url: str, rec: LogRecord, pop: str, pattern: str,
                timeout: float) -> Outcome:
    headers = [(k, v) for k, v in rec.headers() if k != "Host"] + [("Accept-Encoding", ACCEPT_ENCODING)]
    try:
        async with session.request(rec.method, url + _url(rec), headers=headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            return Outcome(rec, pop, pattern, resp.status, result_of_x_cache(resp.headers.get("X-Cache", "")))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Outcome(rec, pop, pattern, 0, "", f"{type(exc).__name__}: {exc}"[:200])


async def replay(records: Sequence[LogRecord], pop_urls: dict[str, str], pop_map: PopMap, *, speed: float = 1.0,
                 concurrency: int = 32, plan: DistributionPlan | None = None, timeout: float = 30.0,
                 stats: ReadStats | None = None, max_listed: int = 20) -> ReplayReport:
    """Send ``records`` (sorted by time here) to the POPs (name -> base URL); see the module docstring."""
    if speed < 0 or concurrency < 1:
        raise ValueError("--speed must be >= 0 and --concurrency >= 1")
    ordered = sorted(records, key=lambda r: r.ts)
    outcomes: list[Outcome] = []
    owner = TaskOwner("replay")
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    start = loop.time()
    t0 = time.perf_counter()
    base = ordered[0].ts if ordered else 0.0
    max_lag = 0.0

    async def one(url: str, rec: LogRecord, pop: str, pattern: str) -> None:
        try:
            outcomes.append(await _send(session, url, rec, pop, pattern, timeout))
        finally:
            slots.release()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        try:
            for rec in ordered:
                due = start + (rec.ts - base) / speed if speed > 0 else start
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                max_lag = max(max_lag, loop.time() - due)
                pop = pop_map.pop_for(rec.location)
                pattern = plan.match(rec.uri).behavior.path_pattern if plan is not None else "*"
                if owner.spawn(one(pop_urls[pop], rec, pop, pattern), name=f"line-{rec.line}") is None:
                    slots.release()  # pragma: no cover - the owner has no limit and is open until the end
            await owner.join(None)
        finally:
            await owner.aclose()
    outcomes.sort(key=lambda o: (o.rec.ts, o.rec.line))
    return ReplayReport(stats or ReadStats("-"), outcomes, pop_map.describe([r.location for r in ordered]), speed,
                        time.perf_counter() - t0, max_lag, max_listed)
