"""The downstream side of a tier hop: where a cacheable miss goes next, and the hop itself.

``TierUpstream`` belongs to one POP or tier process (``PopContext.upstream``). :meth:`TierUpstream.next_hop` is the
routing rule of :mod:`edge.cdn.tiers` (POP -> the REC of its region; REC -> the Origin Shield of the target origin
when that is another region; a shield -> the origin). :meth:`TierUpstream.fetch` sends the request, as the POP holds
it after the viewer-side steps (viewer headers included, the viewer's conditionals and Range left out: the full
object is asked for, as from an origin), to the tier node over loopback HTTP (the POP's fast HTTP/1.1 origin client),
and returns the response with the tier's verdict (:class:`TierVerdict`).

A tier node publishes its port in the run directory (``port_file_name``); a region whose node is not running (or
refuses connections) is skipped, with one log line, and the request goes to the origin from here: CloudFront too
routes around an unavailable tier ("Origin Shield ... routes to a secondary location", origin-shield.html).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from edge.cdn.cache.ranges import CONDITIONAL_HEADERS
from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.errors import OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig
from edge.cdn.tiers import LAYER_REC, LAYER_SHIELD, TIER_HEADER_PREFIX, port_file_name

__all__ = ["Hop", "TierUpstream", "TierVerdict"]

log = logging.getLogger("edgelab.tiers")

# How long a tier hop may take: the tier's own origin fetch (up to 3 attempts x 10 s to connect, a read timeout of up
# to 120 s on AWS) and, behind it, the shield's.
HOP_READ_TIMEOUT_S = 300.0
RETRY_MISSING_S = 1.0  # a region without a published port is looked up again after this long

H_LAYER = "X-Edgelab-Tier-Layer"  # request: what the callee acts as (REC | Origin Shield)
H_CLIENT = "X-Edgelab-Tier-Client"  # request: the viewer's address
H_SCHEME = "X-Edgelab-Tier-Scheme"  # request: the viewer's scheme
H_RID = "X-Edgelab-Tier-Rid"  # request: the X-Amz-Cf-Id of the viewer request
H_VERDICT = "X-Edgelab-Tier-Verdict"  # response: TierVerdict as JSON
_STRIPPED = CONDITIONAL_HEADERS


@dataclass(frozen=True, slots=True)
class Hop:
    """The next tier of a miss: the node of ``region`` acting as ``layer`` (REC or Origin Shield)."""

    region: str
    layer: str


@dataclass(frozen=True, slots=True)
class TierVerdict:
    """What a tier says about its answer: X-Cache, the origin's status (None: no origin answer, e.g. a Lambda error),
    the tier whose cache answered (``hit_layer``), the tier that called the origin (``upstream_layer``) and the origin's
    first byte time, the Server-Timing entries of the functions that ran there and the origin's own Server-Timing."""

    x_cache: str
    origin_status: int | None = None
    hit_layer: str = ""
    upstream_layer: str = ""
    upstream_fbl_s: float | None = None
    entries: tuple[str, ...] = ()
    origin_timing: str = ""

    def header(self) -> str:
        return orjson.dumps({"x": self.x_cache, "s": self.origin_status, "h": self.hit_layer, "u": self.upstream_layer,
                             "f": self.upstream_fbl_s, "e": list(self.entries), "o": self.origin_timing}).decode()

    @classmethod
    def parse(cls, value: str) -> TierVerdict:
        """The verdict header of a tier's answer; raises OriginUnavailable for anything else (not a tier)."""
        try:
            d = orjson.loads(value)
            fbl = d["f"]
            return cls(x_cache=str(d["x"]), origin_status=None if d["s"] is None else int(d["s"]),
                       hit_layer=str(d["h"]), upstream_layer=str(d["u"]),
                       upstream_fbl_s=None if fbl is None else float(fbl), entries=tuple(str(e) for e in d["e"]),
                       origin_timing=str(d["o"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise OriginUnavailable(f"the tier answered without a valid verdict: {value[:200]!r}") from exc


class TierUpstream:
    """The tier hops of one process (see the module docstring): ``region`` is the REC a POP's misses go to, or the
    tier node's own region; ``run_dir`` holds the nodes' port files. ``start``/``close`` with the process."""

    def __init__(self, run_dir: Path, region: str, *, stream_threshold: int) -> None:
        self.run_dir = run_dir
        self.region = region
        self.client = AiohttpOriginClient(OriginClientConfig(stream_threshold=stream_threshold, latency=0.0))
        self._origins: dict[str, CustomOrigin] = {}
        self._missing: dict[str, float] = {}  # region -> when its port file was last found missing
        self.hops = 0  # requests sent to a tier (refused ones included: also counted in unavailable)
        self.unavailable = 0  # hops that found no tier (the request went to the origin from here)

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    def next_hop(self, layer: str, plan: BehaviorPlan) -> Hop | None:
        """Where a cacheable miss goes from a node acting as ``layer`` ("" for a POP): see :mod:`edge.cdn.tiers`."""
        if not layer:  # a REC in the shield's Region acts as the shield: still the request's REC (origin-shield.html)
            return Hop(self.region, LAYER_REC)
        shield = plan.origin.shield_region
        if layer == LAYER_REC and shield and shield != self.region:
            return Hop(shield, LAYER_SHIELD)
        return None

    def _origin(self, region: str) -> CustomOrigin | None:
        origin = self._origins.get(region)
        if origin is not None:
            return origin
        now = time.monotonic()
        if now - self._missing.get(region, -RETRY_MISSING_S) < RETRY_MISSING_S:
            return None
        try:
            port = int((self.run_dir / port_file_name(region)).read_text().strip())
        except (OSError, ValueError):
            if region not in self._missing:
                log.warning("no tier node for %s is running (no %s): misses that would go through it go to the "
                            "origin directly", region, self.run_dir / port_file_name(region))
            self._missing[region] = now
            return None
        self._missing.pop(region, None)
        origin = self._origins[region] = CustomOrigin(domain_name=f"tier-{region}", port=port,
                                                      connect_host=f"127.0.0.1:{port}",
                                                      read_timeout=HOP_READ_TIMEOUT_S)
        return origin

    async def fetch(self, hop: Hop, request: EdgeRequest, request_id: str,
                    method: str) -> tuple[EdgeResponse, TierVerdict] | None:
        """``request`` (the viewer request after the viewer-side steps) through the tier ``hop``, asking for the full
        object with ``method`` (GET, or OPTIONS when that is cached); None when that tier is not available (the
        caller goes to the origin). Raises ``OriginError`` when the tier was reached but failed."""
        origin = self._origin(hop.region)
        if origin is None:
            self.unavailable += 1
            return None
        headers = [(k, v) for k, v in request.headers
                   if k.lower() not in _STRIPPED and not k.lower().startswith(TIER_HEADER_PREFIX)]
        headers += [(H_LAYER, hop.layer), (H_CLIENT, request.client_ip), (H_SCHEME, request.scheme),
                    (H_RID, request_id)]
        hop_request = EdgeRequest(method=method, uri=request.uri, querystring=request.querystring, headers=headers,
                                  client_ip=request.client_ip, origin=origin)
        self.hops += 1
        try:
            resp = await self.client.fetch(hop_request)
        except OriginUnavailable as exc:  # not running (any more): forget its port, go to the origin from here
            self._origins.pop(hop.region, None)
            self._missing.pop(hop.region, None)
            self.unavailable += 1
            log.warning("tier node %s unreachable (%s): this request goes to the origin directly", hop.region, exc)
            return None
        verdict_value = ""
        kept = []
        for k, v in resp.headers:
            if k.lower() == "x-edgelab-tier-verdict":
                verdict_value = v
            elif not k.lower().startswith(TIER_HEADER_PREFIX):
                kept.append((k, v))
        if not verdict_value:
            await resp.aclose()
            raise OriginUnavailable(f"127.0.0.1:{origin.port} (tier {hop.region}) is not a tier node")
        resp.headers = kept
        return resp, TierVerdict.parse(verdict_value)
