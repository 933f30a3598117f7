"""CloudFront's caching tiers between the POPs and the origins: regional edge caches (REC) and Origin Shield.

What AWS documents, and what edgelab does with it:

* "How CloudFront works with regional edge caches"
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/HowCloudFrontWorks.html#CloudFrontRegionaledgecaches):
  a POP's miss goes to the regional edge cache of its region, which answers from its own cache or fetches from the
  origin; the object is then cached in the REC and in the POP. Proxy methods (PUT, POST, PATCH, OPTIONS, DELETE) go
  from the POP straight to the origin, and so do "dynamic requests, as determined at request time". Here: one tier
  node per region, shared by every POP of that region (``[[pops]] region``, or ``rec_region`` to point a POP at
  another region's REC); a request the POP does not cache (a method outside ``CachedMethods``, a behavior whose
  cache policy disables caching: ``cache_lookup.Pass``) never reaches a tier. An OPTIONS request that the behavior
  caches (``CachedMethods`` includes OPTIONS) is cacheable and goes through the tiers like GET (the AWS page lists
  OPTIONS among the proxy methods, but CloudFront caches it when the behavior says so: cloudfront-features §5).
* "Using Amazon CloudFront Origin Shield"
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/origin-shield.html): with
  ``Origin.OriginShield.Enabled`` every request from the RECs for that origin goes through the shield, the REC of
  ``OriginShieldRegion``, which collapses the misses of every region into as few as one origin request; when a
  request's REC is in the shield's Region, the REC *is* the shield (no extra hop). Here: the REC node of a region
  also acts as the Origin Shield of that region (one cache, as on AWS), and a REC whose origin has a shield in
  another region fetches from that region's node.
* Lambda@Edge: origin-request and origin-response run where CloudFront goes to the origin ("Lambda@Edge functions
  ... run in the Origin Shield Region" on the Origin Shield page; they run only "when CloudFront forwards a
  request to your origin", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-cloudfront-trigger-events.html):
  the tier that calls the origin runs them (the POP for a pass-through, else the last tier), once per origin fetch;
  a tier hit runs none. Viewer triggers and CloudFront Functions stay at the POP.
* Server-Timing ("Server-Timing header" in "Understand response headers policies"): ``cdn-hit-layer`` names the tier
  whose cache answered (``EDGE``, ``REC``, ``Origin Shield``), ``cdn-upstream-layer`` the tier that called the
  origin. X-Cache only says Hit/Miss/RefreshHit/Error: a POP miss answered from a REC's cache is ``Hit from
  cloudfront`` with ``cdn-hit-layer;desc="REC"`` (the hit layer exists to tell tier hits apart).
* Invalidations reach every tier (the control process fans them out to every node; "invalidation purges both",
  HowCloudFrontWorks).

Modules: :mod:`.upstream` (the POP/tier side: which tier a miss goes to next, and the hop itself over loopback
HTTP), :mod:`.server` (a tier node's listener: a downstream tier's request through
:func:`edge.cdn.pipeline.handle_tier`, the answer with the tier's verdict in ``X-Edgelab-Tier-*`` headers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edge.cdn.config.distribution import Distribution
from edge.cdn.config.settings import PopSettings

__all__ = ["LAYER_REC", "LAYER_SHIELD", "TIER_HEADER_PREFIX", "port_file_name", "tier_regions"]

LAYER_REC = "REC"  # CloudFront's Server-Timing names of the tiers
LAYER_SHIELD = "Origin Shield"
TIER_HEADER_PREFIX = "x-edgelab-tier-"  # the tier hop's own headers (never forwarded further, never from viewers)


def tier_regions(pops: Sequence[PopSettings], distributions: Iterable[Distribution]) -> list[str]:
    """The regions that need a tier node: each POP's REC region, then each Origin Shield Region of the
    distributions, in that order, once each."""
    out: list[str] = []
    for p in pops:
        if p.tier_region not in out:
            out.append(p.tier_region)
    for d in distributions:
        for o in d.origins.values():
            if o.shield_region and o.shield_region not in out:
                out.append(o.shield_region)
    return out


def port_file_name(region: str) -> str:
    """The file under the stack's run directory where the tier node of ``region`` publishes its port."""
    return f"t-{region}.port"
