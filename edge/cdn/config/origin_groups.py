"""``OriginGroups``: two origins, the second used when the first fails ("Optimize high availability with CloudFront
origin failover",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/high_availability_origin_failover.html; the
``OriginGroup`` API shape, https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_OriginGroup.html).

A behavior's ``TargetOriginId`` may name a group: requests go to the primary (the first member); a connection
failure, a timeout or a status of ``FailoverCriteria.StatusCodes`` (400, 403, 404, 416, 500, 502, 503, 504) sends a
GET, HEAD or OPTIONS request to the secondary (``steps/origin_fetch``, ``pipeline._fill``).
``SelectionCriteria: media-quality-based`` (MediaPackage v2 media quality scores) has no local meaning and is
refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.cdn.config.policies import ConfigError, items

__all__ = ["FAILOVER_STATUSES", "OriginGroup", "parse_origin_groups"]

FAILOVER_STATUSES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class OriginGroup:
    id: str
    primary: str  # origin Ids
    secondary: str
    statuses: frozenset[int]


def parse_origin_groups(obj: Any, path: str, origin_ids: frozenset[str]) -> dict[str, OriginGroup]:
    """``OriginGroups`` of a DistributionConfig, by group Id."""
    out: dict[str, OriginGroup] = {}
    for i, item in enumerate(items(obj, path, required=False)):
        ipath = f"{path}.Items[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(ipath, "must be {Id, FailoverCriteria, Members}")
        unknown = set(item) - {"Id", "FailoverCriteria", "Members", "SelectionCriteria"}
        if unknown:
            raise ConfigError(f"{ipath}.{sorted(unknown)[0]}", "not an OriginGroup field")
        gid = item.get("Id")
        if not isinstance(gid, str) or not gid:
            raise ConfigError(f"{ipath}.Id", "required")
        if gid in out or gid in origin_ids:
            raise ConfigError(f"{ipath}.Id", f"{gid!r} is already the Id of an origin or an origin group")
        selection = item.get("SelectionCriteria", "default")
        if selection == "media-quality-based":
            raise ConfigError(f"{ipath}.SelectionCriteria", "not supported by edgelab: media quality-aware "
                              "resiliency scores MediaPackage v2 streams, which do not exist locally; next step: "
                              "use default (failover by status and connection errors)")
        if selection != "default":
            raise ConfigError(f"{ipath}.SelectionCriteria", "must be default or media-quality-based")
        fc = item.get("FailoverCriteria")
        if not isinstance(fc, Mapping) or set(fc) - {"StatusCodes"}:
            raise ConfigError(f"{ipath}.FailoverCriteria", "must be {StatusCodes: {Quantity, Items}}")
        codes = items(fc.get("StatusCodes"), f"{ipath}.FailoverCriteria.StatusCodes")
        for j, c in enumerate(codes):
            if c not in FAILOVER_STATUSES or isinstance(c, bool):
                raise ConfigError(f"{ipath}.FailoverCriteria.StatusCodes.Items[{j}]",
                                  f"{c!r} is not one of {', '.join(map(str, sorted(FAILOVER_STATUSES)))}")
        if not codes:
            raise ConfigError(f"{ipath}.FailoverCriteria.StatusCodes", "at least one status code is required")
        members = items(item.get("Members"), f"{ipath}.Members")
        if len(members) != 2:
            raise ConfigError(f"{ipath}.Members", "an origin group has exactly two members (primary, secondary)")
        ids: list[str] = []
        for j, m in enumerate(members):
            oid = m.get("OriginId") if isinstance(m, Mapping) and set(m) == {"OriginId"} else None
            if not isinstance(oid, str) or oid not in origin_ids:
                raise ConfigError(f"{ipath}.Members.Items[{j}].OriginId", f"no origin with Id {oid!r}")
            ids.append(oid)
        if ids[0] == ids[1]:
            raise ConfigError(f"{ipath}.Members", "the two members must be different origins")
        out[gid] = OriginGroup(gid, ids[0], ids[1], frozenset(codes))
    return out
