"""Viewer locations and geographic restriction: where each POP's simulated viewers are, the per-request test
override, and ``Restrictions.GeoRestriction``.

A POP has one simulated viewer location (``location`` of its ``[[pops]]`` entry; defaults for IAD, FRA and NRT and,
for other names, by region). With ``[edge] viewer_location_header = true`` a request may carry
``X-Edgelab-Viewer-Location: DE`` (or ``country=DE; region=BE; city=Berlin; postal=10115; tz=Europe/Berlin;
lat=52.52; lon=13.40; asn=3320``) to be located elsewhere; the header is a test hook: switched off (the default),
it is an ordinary header with no effect. Country and region names come from ISO 3166 (``pycountry``).

CloudFront's location headers and their formats: "Add CloudFront request headers"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/adding-cloudfront-headers.html). Geographic
restriction: "Restrict the geographic distribution of your content"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/georestrictions.html) - an allow list or a
block list of ISO 3166-1 alpha-2 codes for the whole distribution; a viewer whose location is unknown is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import pycountry

from edge.cdn.config.policies import ConfigError, items

__all__ = ["DEFAULT_LOCATIONS", "LOCATION_HEADER", "GeoRestriction", "ViewerLocation", "country_name",
           "default_location", "parse_geo_restriction", "parse_location", "parse_location_header"]

LOCATION_HEADER = "x-edgelab-viewer-location"


@dataclass(frozen=True, slots=True)
class ViewerLocation:
    """Where a viewer is, as CloudFront's ``CloudFront-Viewer-*`` headers say it ("" = not known)."""

    country: str  # ISO 3166-1 alpha-2, upper-case
    region: str = ""  # ISO 3166-2 subdivision code without the country (e.g. "BE", "13")
    city: str = ""
    postal_code: str = ""
    time_zone: str = ""  # IANA
    latitude: str = ""
    longitude: str = ""
    metro_code: str = ""  # US only
    asn: str = ""

    @property
    def country_name(self) -> str:
        return country_name(self.country)

    @property
    def region_name(self) -> str:
        sub = pycountry.subdivisions.get(code=f"{self.country}-{self.region}") if self.region else None
        return sub.name if sub is not None else ""


DEFAULT_LOCATIONS: Mapping[str, ViewerLocation] = MappingProxyType({
    "IAD": ViewerLocation("US", "VA", "Ashburn", "20147", "America/New_York", "39.04370", "-77.48750", "511",
                          "701"),
    "FRA": ViewerLocation("DE", "HE", "Frankfurt am Main", "60311", "Europe/Berlin", "50.11090", "8.68210", "",
                          "3320"),
    "NRT": ViewerLocation("JP", "13", "Tokyo", "100-0001", "Asia/Tokyo", "35.68950", "139.69170", "", "2516"),
})
_BY_REGION = {"us-east-1": "IAD", "eu-central-1": "FRA", "ap-northeast-1": "NRT"}


def default_location(pop_name: str, region: str) -> ViewerLocation | None:
    """The default simulated viewer location of POP ``pop_name`` (by name, else by its region; None: unknown)."""
    return DEFAULT_LOCATIONS.get(pop_name.upper()) or DEFAULT_LOCATIONS.get(_BY_REGION.get(region, ""))


def country_name(code: str) -> str:
    c = pycountry.countries.get(alpha_2=code)
    return c.name if c is not None else ""


def _country(code: Any, path: str) -> str:
    if not isinstance(code, str) or len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise ConfigError(path, f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code.upper()


_LOCATION_KEYS = {"country": "country", "region": "region", "city": "city", "postal": "postal_code",
                  "postal_code": "postal_code", "tz": "time_zone", "time_zone": "time_zone", "lat": "latitude",
                  "latitude": "latitude", "lon": "longitude", "longitude": "longitude", "metro": "metro_code",
                  "metro_code": "metro_code", "asn": "asn"}


def parse_location(data: Mapping[str, Any], path: str) -> ViewerLocation:
    """A location table of the settings (``country`` required; ``region``, ``city``, ``postal_code``, ``time_zone``,
    ``latitude``, ``longitude``, ``metro_code``, ``asn`` optional)."""
    fields: dict[str, str] = {}
    for k, v in data.items():
        name = _LOCATION_KEYS.get(k)
        if name is None:
            raise ConfigError(f"{path}.{k}", "unknown key (country, region, city, postal_code, time_zone, "
                                             "latitude, longitude, metro_code, asn)")
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise ConfigError(f"{path}.{k}", "must be a string or a number")
        fields[name] = str(v)
    if "country" not in fields:
        raise ConfigError(f"{path}.country", "required (ISO 3166-1 alpha-2, e.g. DE)")
    fields["country"] = _country(fields["country"], f"{path}.country")
    return ViewerLocation(**fields)


def parse_location_header(value: str) -> ViewerLocation | None:
    """``X-Edgelab-Viewer-Location``: ``DE`` or ``country=DE; city=Berlin; ...`` (None when it names no valid
    country: the POP's own location is used)."""
    value = value.strip()
    if "=" not in value:
        value = f"country={value}"
    fields: dict[str, str] = {}
    for part in value.split(";"):
        k, _, v = part.partition("=")
        name = _LOCATION_KEYS.get(k.strip().lower())
        if name is not None and v.strip():
            fields[name] = v.strip()
    code = fields.get("country", "").upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        return None
    return replace(ViewerLocation(code), **{k: v for k, v in fields.items() if k != "country"})


@dataclass(frozen=True, slots=True)
class GeoRestriction:
    """``Restrictions.GeoRestriction``: ``whitelist`` (only these countries) or ``blacklist`` (all but these)."""

    restriction_type: str  # whitelist | blacklist
    countries: frozenset[str]

    def blocks(self, location: ViewerLocation | None) -> bool:
        """Whether a viewer at ``location`` is refused (an unknown location is served)."""
        if location is None:
            return False
        listed = location.country in self.countries
        return not listed if self.restriction_type == "whitelist" else listed


def parse_geo_restriction(restrictions: Any, path: str) -> GeoRestriction | None:
    """``Restrictions`` of a DistributionConfig (None: RestrictionType none)."""
    if restrictions is None:
        return None
    if not isinstance(restrictions, Mapping) or set(restrictions) - {"GeoRestriction"}:
        raise ConfigError(path, "must be {GeoRestriction: {RestrictionType, Quantity, Items}}")
    geo = restrictions.get("GeoRestriction")
    gpath = f"{path}.GeoRestriction"
    if not isinstance(geo, Mapping):
        raise ConfigError(gpath, "required: {RestrictionType, Quantity, Items}")
    kind = geo.get("RestrictionType")
    if kind not in ("none", "whitelist", "blacklist"):
        raise ConfigError(f"{gpath}.RestrictionType", "must be none, whitelist or blacklist")
    codes = items({k: v for k, v in geo.items() if k != "RestrictionType"}, gpath, required=False)
    countries = frozenset(_country(c, f"{gpath}.Items[{i}]") for i, c in enumerate(codes))
    if kind == "none":
        if countries:
            raise ConfigError(f"{gpath}.Items", "must be empty when RestrictionType is none")
        return None
    if not countries:
        raise ConfigError(f"{gpath}.Items", f"a {kind} needs at least one country code")
    return GeoRestriction(kind, countries)
