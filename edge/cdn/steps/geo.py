"""Step 1a, geo: where the viewer is, and the distribution's geographic restriction.

The viewer's location is the POP's simulated one (``[[pops]] location``, defaults for IAD/FRA/NRT:
:mod:`edge.cdn.config.geo`) or, when the settings switch the test hook on (``[edge] viewer_location_header``), the
one an ``X-Edgelab-Viewer-Location`` request header names (the header is then removed: it never reaches a function or
the origin). The ``CloudFront-Viewer-*`` location headers built from it are added by ``steps/viewer_headers`` when a
policy selects them - never taken from what the viewer sent.

``Restrictions.GeoRestriction`` refuses a viewer from a country outside the allow list (or on the block list) with
CloudFront's 403 (:class:`edge.cdn.errors.GeoBlocked`; a custom error response for 403 replaces its page), before any
function runs: the order of the geo check and viewer-request functions is undocumented ("Restrict the geographic
distribution of your content", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/georestrictions.html);
a blocked viewer reaching no code is the emulator's choice. A viewer whose location is unknown is served.
"""

from __future__ import annotations

from edge.cdn.config.geo import LOCATION_HEADER, parse_location_header
from edge.cdn.errors import GeoBlocked
from edge.cdn.models import header_del, header_get
from edge.cdn.steps import Exchange
from edge.cdn.steps.context import PopContext


def locate(ctx: PopContext, ex: Exchange) -> None:
    """Set ``ex.location``; raise :class:`GeoBlocked` when the distribution's restriction refuses it."""
    location = ctx.location
    if ctx.location_header:
        raw = header_get(ex.request.headers, LOCATION_HEADER)
        if raw is not None:
            header_del(ex.request.headers, LOCATION_HEADER)
            location = parse_location_header(raw) or location
    ex.location = location
    geo = ctx.distribution.geo
    if geo is not None and geo.blocks(location):
        ex.trace.append("geo:blocked")
        raise GeoBlocked(f"viewer in {location.country if location else '?'} refused by the {geo.restriction_type}")
