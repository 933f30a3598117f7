"""One merged view of log events across regions and log groups, for ``edgelab logs`` (``GET /edgelab/v1/logs``).

CloudWatch keeps a Lambda@Edge function's logs apart: ``/aws/lambda/us-east-1.NAME`` in the region of every edge
location that ran it, ``/aws/lambda/NAME`` for direct invocations, CloudFront's validation errors in
``/aws/cloudfront/LambdaEdge/<DistributionId>`` and a CloudFront function's in ``/aws/cloudfront/function/NAME``
(us-east-1)
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-logs.html,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-cloudwatch-metrics-logging.html). This view
reads them all with the CloudWatch Logs API's own reader (:class:`~edge.control.logs_api.store.RegionLogs`) and
merges them by time, each event labelled with its region, POP and group.

- A *name* is a function (every group it logs to, and the validation lines naming it) or a log group by its AWS
  name; a name that is neither is :class:`UnknownLogName` (with the known ones), never an empty answer.
- ``request_id`` takes a Lambda request id or the ``X-Amz-Cf-Id`` a viewer saw: the POPs derive the Lambda request
  ids of a viewer request from its Cf-Id (:func:`edge.cdn.lambda_edge.runner.edge_request_ids`), and CloudFront's
  own lines carry the Cf-Id.
- ``since_ms`` skips the stream files not written since (``--follow`` asks again with the last timestamp seen,
  minus a margin: events reach the files up to a flush interval late; each event's ``id`` removes duplicates).
- Code-store paths in messages (tracebacks) are shown as the function's own files: the declared directory
  (``[[functions]]``), else ``/var/task/...`` and ``/opt/...`` as on AWS.

Blocking file I/O: call from a thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.cdn.lambda_edge.rules import EDGE_REGION
from edge.cdn.lambda_edge.runner import edge_request_ids
from edge.control.logs_api.store import Event, RegionLogs

__all__ = ["LogQuery", "LogSources", "UnknownLogName", "groups_for", "list_groups", "read_merged"]

LAMBDA_PREFIX = "/aws/lambda/"
EDGE_PREFIX = f"/aws/lambda/{EDGE_REGION}."
VALIDATION_PREFIX = "/aws/cloudfront/LambdaEdge/"
CFF_PREFIX = "/aws/cloudfront/function/"
_CODE_PATH = re.compile(r"(?P<root>/\S*?/code/extracted)/(?P<sha>[0-9a-f]{64})/(?P<rel>[^\"'\s,:]+)")


class UnknownLogName(LookupError):
    """Neither a function nor a log group (``known``: the names there are)."""

    def __init__(self, name: str, known: Collection[str]) -> None:
        shown = ", ".join(sorted(known)[:30]) or "none yet"
        super().__init__(f"no function or log group named {name!r} (functions and groups: {shown}); "
                         "`edgelab logs` with no name lists the log groups")
        self.name = name


@dataclass(frozen=True)
class LogQuery:
    name: str
    request_id: str | None = None
    since_ms: int | None = None
    tail: int = 100  # the last N events (0: all)
    region: str | None = None


@dataclass
class LogSources:
    """What the view knows besides the files: the functions (registry and CloudFront functions), the
    distribution's id (its validation group), POP names per region, and per function the code digests of its
    versions with the declared directory they came from (None: not declared)."""

    functions: Collection[str] = ()
    distribution_id: str = ""
    pops_by_region: Mapping[str, list[str]] = field(default_factory=dict)
    code: Mapping[str, tuple[Collection[str], Path | None]] = field(default_factory=dict)


def _regions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def list_groups(logs_root: Path) -> list[dict[str, Any]]:
    """Every log group of every region: name, region, last event time (ms)."""
    out = []
    for region in _regions(logs_root):
        logs = RegionLogs(logs_root / region)
        for g in logs.groups():
            last = max((s.last_event_ms or 0 for s in logs.streams(g.name)), default=0)
            out.append({"group": g.name, "region": region, "last_event_ms": last or None})
    return sorted(out, key=lambda g: (g["group"], g["region"]))


def groups_for(name: str, logs_root: Path, sources: LogSources) -> tuple[list[str], str | None]:
    """(groups to read, function whose validation lines to include) for a function name or log group name;
    :class:`UnknownLogName` when it is neither."""
    existing = {g for region in _regions(logs_root) for g in RegionLogs(logs_root / region).store.groups()}
    validation = f"{VALIDATION_PREFIX}{sources.distribution_id}" if sources.distribution_id else ""
    if name.startswith("/"):
        known_group = name in existing or name == validation
        for prefix in (EDGE_PREFIX, CFF_PREFIX, LAMBDA_PREFIX):
            if name.startswith(prefix) and name[len(prefix):] in sources.functions:
                known_group = True
                break
        if not known_group:
            raise UnknownLogName(name, existing | ({validation} if validation else set()) | set(sources.functions))
        return [name], None
    groups = [f"{LAMBDA_PREFIX}{name}", f"{EDGE_PREFIX}{name}", f"{CFF_PREFIX}{name}"]
    if name not in sources.functions and not existing.intersection(groups):
        raise UnknownLogName(name, existing | set(sources.functions))
    return [*groups, *([validation] if validation else [])], name


def _pop_of(group: str, stream: str, region: str, pops_by_region: Mapping[str, list[str]]) -> str:
    if group.startswith(VALIDATION_PREFIX):  # the POP writes its name first: IAD/2026/12/04
        return stream.split("/", 1)[0]
    if group.startswith(CFF_PREFIX):  # IAD-...
        return stream.split("-", 1)[0]
    if group.startswith(LAMBDA_PREFIX) and not group.startswith(EDGE_PREFIX):
        return "API"  # invoked through the Lambda API (control process)
    return "|".join(pops_by_region.get(region, [])) or "-"


def _source_paths(message: str, sources: LogSources, function: str | None) -> str:
    """Code-store paths -> the function's own file names (see the module docstring)."""
    if "/code/extracted/" not in message:
        return message
    digests, directory = sources.code.get(function or "", ((), None))

    def swap(m: re.Match[str]) -> str:
        if m["sha"] in digests:
            return str(directory / m["rel"]) if directory is not None else f"/var/task/{m['rel']}"
        return f"/opt/{m['rel']}"

    return _CODE_PATH.sub(swap, message)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _function_of(group: str) -> str | None:
    for prefix in (EDGE_PREFIX, CFF_PREFIX, LAMBDA_PREFIX):
        if group.startswith(prefix):
            return group[len(prefix):]
    return None


def read_merged(logs_root: Path, query: LogQuery, sources: LogSources) -> dict[str, Any]:
    """``{"groups": [...], "events": [...]}`` for ``query``: events oldest first, each with ``id``,
    ``timestamp``, ``time`` (ISO 8601 UTC), ``region``, ``pop``, ``group``, ``stream``, ``request_id`` and
    ``message``. Raises :class:`UnknownLogName`."""
    groups, function = groups_for(query.name, logs_root, sources)
    wanted: set[str] | None = None
    if query.request_id:
        wanted = {query.request_id, *edge_request_ids(query.request_id).values()}
    events: list[tuple[Event, str, str]] = []
    for region in _regions(logs_root):
        if query.region and region != query.region:
            continue
        logs = RegionLogs(logs_root / region)
        for group in groups:
            if not logs.has_group(group):
                continue
            only_mentions = group.startswith(VALIDATION_PREFIX) and function is not None
            for info in logs.streams(group):
                if query.since_ms is not None and info.last_ingestion_ms < query.since_ms:
                    continue  # not written since: nothing new in it
                for e in logs.events(group, info.name):
                    if query.since_ms is not None and e.timestamp < query.since_ms:
                        continue
                    if wanted is not None and e.request_id not in wanted:
                        continue
                    if only_mentions and f"(function: {function}:" not in e.message:
                        continue
                    events.append((e, region, group))
    events.sort(key=lambda t: (t[0].timestamp, t[1], t[2], t[0].stream, t[0].seq))
    if query.tail > 0:
        events = events[-query.tail:]
    out = [{"id": f"{region}|{group}|{e.stream}|{e.seq}", "timestamp": e.timestamp, "time": _iso(e.timestamp),
            "region": region, "pop": _pop_of(group, e.stream, region, sources.pops_by_region), "group": group,
            "stream": e.stream, "request_id": e.request_id,
            "message": _source_paths(e.message, sources, _function_of(group) or function)}
           for e, region, group in events]
    return {"groups": groups, "events": out}
