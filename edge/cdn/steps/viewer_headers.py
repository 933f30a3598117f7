"""CloudFront-generated viewer headers (contract §5.5, "Add CloudFront request headers",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/adding-cloudfront-headers.html):
``CloudFront-Is-{Desktop,Mobile,Tablet,SmartTV,IOS,Android}-Viewer`` derived from the User-Agent,
``CloudFront-Forwarded-Proto``/``-Viewer-Http-Version``, the location headers (``CloudFront-Viewer-Country``,
``-Country-Name``, ``-Country-Region``, ``-Country-Region-Name``, ``-City``, ``-Postal-Code``, ``-Time-Zone``,
``-Latitude``, ``-Longitude``, ``-Metro-Code`` (US only), ``-ASN``) from the viewer's location (``steps/geo``),
``CloudFront-Viewer-Address`` (``ip:port``) and ``-Header-Order``/``-Header-Count`` from the request as received.

They exist only when the behavior's cache policy or origin-request policy names them (which ones is compiled
with the behavior's plan: ``BehaviorPlan.viewer_headers``), and are added after viewer-request (a viewer-request
function never sees them) and before the cache key is computed, so they can be part of the key. A copy the viewer
sent is replaced, never passed on. A location header whose value is unknown is not added; non-ASCII values are
percent-encoded, as CloudFront does. The regexes are compiled once at import.

A viewer's own copies of the names CloudFront owns (``edge.cdn.config.policies.cloudfront_owned``: a spoofed
``CloudFront-Viewer-Country``...) are dropped at the same point when a policy names one of them, generated here or
not (geo headers): CloudFront overwrites them, so they never select a cache entry; a viewer-request function still
sees them, as on CloudFront (contract §3.2). Where no policy names one, they cannot reach the key, and the
origin-request step drops them on the way to the origin.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from edge.cdn.config.geo import ViewerLocation
from edge.cdn.config.policies import DEVICE_HEADERS, LOCATION_HEADERS, cloudfront_owned
from edge.cdn.models import Headers, header_get
from edge.cdn.steps import Exchange

_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|BlackBerry|IEMobile|Windows Phone|Opera Mini", re.I)
_TABLET = re.compile(r"iPad|Tablet|Kindle|Silk|PlayBook|Android(?!.*Mobile)", re.I)
_SMART_TV = re.compile(r"Smart-?TV|GoogleTV|AppleTV|HbbTV|Roku|BRAVIA|NetCast|Tizen.*TV|Web0S|CrKey", re.I)
_IOS = re.compile(r"iPhone|iPad|iPod", re.I)
_ANDROID = re.compile(r"Android", re.I)


def device_flags(user_agent: str) -> dict[str, bool]:
    """CloudFront-Is-*-Viewer values for a User-Agent (several may be true)."""
    mobile = bool(_MOBILE.search(user_agent))
    tablet = not mobile and bool(_TABLET.search(user_agent))
    tv = bool(_SMART_TV.search(user_agent))
    return {
        "CloudFront-Is-Mobile-Viewer": mobile,
        "CloudFront-Is-Tablet-Viewer": tablet,
        "CloudFront-Is-SmartTV-Viewer": tv,
        "CloudFront-Is-Desktop-Viewer": not (mobile or tablet or tv),
        "CloudFront-Is-IOS-Viewer": bool(_IOS.search(user_agent)),
        "CloudFront-Is-Android-Viewer": bool(_ANDROID.search(user_agent)),
    }


def location_values(location: ViewerLocation | None) -> dict[str, str]:
    """The location headers' values for ``location`` (only the known ones; non-ASCII percent-encoded)."""
    if location is None:
        return {}
    values = dict(zip(LOCATION_HEADERS, (
        location.country, location.country_name, location.region, location.region_name, location.city,
        location.postal_code, location.time_zone, location.latitude, location.longitude,
        location.metro_code if location.country == "US" else "", location.asn), strict=True))
    return {k: v if v.isascii() else quote(v, safe=" ") for k, v in values.items() if v}


def with_viewer_headers(headers: Headers, names: tuple[str, ...], *, http_version: str = "1.1", scheme: str = "http",
                        location: ViewerLocation | None = None, address: str = "") -> Headers:
    """A copy of ``headers`` without any CloudFront-owned name the viewer sent, with the generated headers in
    ``names`` appended (replacing any the viewer sent: CloudFront sets these itself)."""
    lnames = {n.lower() for n in names}
    ua = header_get(headers, "user-agent") or ""
    order = ":".join(k.lower() for k, _ in headers)[:7680]  # as received, before anything is added
    count = len(headers)
    headers = [(k, v) for k, v in headers if not cloudfront_owned(low := k.lower()) and low not in lnames]
    flags = device_flags(ua) if any(n in DEVICE_HEADERS for n in names) else {}
    where = location_values(location) if any(n in LOCATION_HEADERS for n in names) else {}
    for name in names:
        if name in flags:
            headers.append((name, "true" if flags[name] else "false"))
        elif name in where:
            headers.append((name, where[name]))
        elif name == "CloudFront-Forwarded-Proto":
            headers.append((name, scheme))
        elif name == "CloudFront-Viewer-Http-Version":
            headers.append((name, http_version))
        elif name == "CloudFront-Viewer-Address" and address:
            headers.append((name, address))
        elif name == "CloudFront-Viewer-Header-Order":
            headers.append((name, order))
        elif name == "CloudFront-Viewer-Header-Count":
            headers.append((name, str(count)))
    return headers


def apply(ex: Exchange) -> None:
    """Replace the viewer's CloudFront-owned headers by the generated ones ``ex``'s behavior selects (after
    viewer-request, before the cache key); nothing to do (on a cache hit, too) when no policy names one."""
    plan = ex.plan
    assert plan is not None
    if plan.scrub_owned or plan.viewer_headers:
        req = ex.request
        major, minor = req.http_version
        req.headers = with_viewer_headers(req.headers, plan.viewer_headers, scheme=req.scheme,
                                          http_version=f"{major}.{minor}", location=ex.location,
                                          address=f"{req.client_ip}:{req.client_port}")
