"""CloudWatch Logs API operations (JSON 1.1, ``X-Amz-Target: Logs_20140328.<Operation>``) over the log store.

https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/Welcome.html — DescribeLogGroups,
DescribeLogStreams, GetLogEvents, FilterLogEvents (filter patterns: :mod:`.patterns`) and StartLiveTail (an
event stream: ``initial-response``, ``sessionStart``, then a ``sessionUpdate`` every second with what was
ingested meanwhile, at most 500 events each, as AWS does; ``SessionTimeoutException`` after three hours).
The region is the one the caller's signature names (``--region``): each region has its own groups.

``aws logs start-live-tail`` (AWS CLI v1) and boto3's ``start_live_tail`` address the ``stream-`` host prefix
(``stream-<endpoint host>``): against edgelab set ``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (or
``Config(inject_host_prefix=False)``). ``aws logs tail --follow`` is an AWS CLI v2 command; it polls
FilterLogEvents, which is served here (CLI v1 has no ``logs tail``).

Differences from CloudWatch: groups and streams are created by logging (no CreateLogGroup / PutLogEvents);
``ingestionTime`` is the stream file's last write; next tokens are edgelab's own opaque strings.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from edge.control.aws_json.dispatch import AwsError, Call, JsonService, member_int, member_str
from edge.control.logs_api import eventstream
from edge.control.logs_api.patterns import Matcher, PatternError, compile_pattern
from edge.control.logs_api.store import Event, GroupInfo, RegionLogs, StreamInfo, group_arn

__all__ = ["LogsApi"]

TARGET_PREFIX = "Logs_20140328"
LIVE_TAIL_BATCH = 500  # events per sessionUpdate (AWS samples down to 500)
LIVE_TAIL_MAX_S = 3 * 3600.0


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def _not_found(what: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"The specified {what} does not exist.")


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode()


def _untoken(raw: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise _invalid("The specified nextToken is invalid.") from None


class LogsApi:
    """The operations, bound to a state directory. ``flush`` writes this process's pending log lines before a
    read (the POPs flush theirs every 50 ms)."""

    def __init__(self, state_dir: Path, *, flush: Callable[[], Awaitable[None]] | None = None,
                 live_tail_interval_s: float = 1.0, live_tail_max_s: float = LIVE_TAIL_MAX_S) -> None:
        self.state_dir = state_dir
        self.flush = flush
        self.live_tail_interval_s = live_tail_interval_s
        self.live_tail_max_s = live_tail_max_s

    def service(self) -> JsonService:
        return JsonService(TARGET_PREFIX, "1.1", {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
            "StartLiveTail": self.start_live_tail,
        })

    def region(self, region: str) -> RegionLogs:
        return RegionLogs(self.state_dir / "logs" / region)

    async def _read(self, work: Callable[[], Any]) -> Any:
        if self.flush is not None:
            await self.flush()
        return await asyncio.to_thread(work)

    @staticmethod
    def _group(call: Call, body: dict[str, Any], *, required: bool = True) -> tuple[str, str]:
        """(region, group name) from ``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN)."""
        name = member_str(body, "logGroupName")
        ident = member_str(body, "logGroupIdentifier")
        if name and ident:
            raise _invalid("LogGroupName and LogGroupIdentifier are mutually exclusive: give one of them.")
        return _parse_group(call.region, name or ident, required=required)

    # -- DescribeLogGroups ---------------------------------------------------------------------------------

    async def describe_log_groups(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        prefix = member_str(body, "logGroupNamePrefix")
        pattern = member_str(body, "logGroupNamePattern")
        if prefix and pattern:
            raise _invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive.")
        limit = member_int(body, "limit", 1, 50, default=50)
        after = _untoken(body["nextToken"]) if body.get("nextToken") else None
        logs = self.region(call.region)
        groups: list[GroupInfo] = await self._read(logs.groups)
        chosen = [g for g in groups if (not prefix or g.name.startswith(prefix))
                  and (not pattern or pattern.lower() in g.name.lower()) and (after is None or g.name > after)]
        page = chosen[:limit]
        out: dict[str, Any] = {"logGroups": [{
            "logGroupName": g.name, "creationTime": g.created_ms, "metricFilterCount": 0,
            "arn": group_arn(g.name, call.region), "storedBytes": g.stored_bytes, "logGroupClass": "STANDARD",
            "logGroupArn": group_arn(g.name, call.region, star=False),
        } for g in page]}
        if len(chosen) > len(page):
            out["nextToken"] = _token(page[-1].name)
        return out

    # -- DescribeLogStreams --------------------------------------------------------------------------------

    async def describe_log_streams(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        region, group = self._group(call, body)
        prefix = member_str(body, "logStreamNamePrefix")
        order = member_str(body, "orderBy", default="LogStreamName")
        if order not in ("LogStreamName", "LastEventTime"):
            raise _invalid(f"orderBy must be LogStreamName or LastEventTime, got {order!r}")
        if order == "LastEventTime" and prefix:
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        descending = bool(body.get("descending", False))
        limit = member_int(body, "limit", 1, 50, default=50) or 50
        start = int(_untoken(body["nextToken"])) if body.get("nextToken") else 0
        logs = self.region(region)

        def work() -> list[StreamInfo] | None:
            return logs.streams(group) if logs.has_group(group) else None

        streams: list[StreamInfo] | None = await self._read(work)
        if streams is None:
            raise _not_found("log group")
        chosen = [s for s in streams if not prefix or s.name.startswith(prefix)]
        if order == "LastEventTime":
            chosen.sort(key=lambda s: (s.last_event_ms or 0, s.name), reverse=descending)
        else:
            chosen.sort(key=lambda s: s.name, reverse=descending)
        page = chosen[start:start + limit]
        out: dict[str, Any] = {"logStreams": [_stream_shape(s, group, region) for s in page]}
        if start + limit < len(chosen):
            out["nextToken"] = _token(start + limit)
        return out

    # -- GetLogEvents ------------------------------------------------------------------------------------

    async def get_log_events(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        """Forward tokens ``f/…`` and backward tokens ``b/…`` are positions in the stream's events (within
        ``startTime``/``endTime``); at either end the same token comes back, which ends the CLI's paging."""
        region, group = self._group(call, body)
        stream = member_str(body, "logStreamName", required=True) or ""
        start_ms = member_int(body, "startTime", 0, 2**63 - 1)
        end_ms = member_int(body, "endTime", 0, 2**63 - 1)
        limit = member_int(body, "limit", 1, 10_000, default=10_000) or 10_000
        from_head = bool(body.get("startFromHead", False))
        token = member_str(body, "nextToken")
        logs = self.region(region)

        def work() -> list[Event] | None:
            if not logs.has_group(group):
                raise _not_found("log group")
            if logs.stream(group, stream) is None:
                return None
            return logs.events(group, stream)

        events: list[Event] | None = await self._read(work)
        if events is None:
            raise _not_found("log stream")
        events = [e for e in events if (start_ms is None or e.timestamp >= start_ms)
                  and (end_ms is None or e.timestamp < end_ms)]
        n = len(events)
        if token:
            direction, _, pos_text = token.partition("/")
            if direction not in ("f", "b") or not pos_text.isdigit():
                raise _invalid("The specified nextToken is invalid.")
            pos = min(int(pos_text), n)
            lo, hi = (pos, min(pos + limit, n)) if direction == "f" else (max(0, pos - limit), pos)
        elif from_head:
            lo, hi = 0, min(limit, n)
        else:
            lo, hi = max(0, n - limit), n
        return {
            "events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_ms}
                       for e in events[lo:hi]],
            "nextForwardToken": f"f/{hi:056d}",
            "nextBackwardToken": f"b/{lo:056d}",
        }

    # -- FilterLogEvents -----------------------------------------------------------------------------------

    async def filter_log_events(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        region, group = self._group(call, body)
        names = body.get("logStreamNames")
        prefix = member_str(body, "logStreamNamePrefix")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
                                  or not 1 <= len(names) <= 100):
            raise _invalid("logStreamNames must be a list of 1 to 100 stream names.")
        if names and prefix:
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        start_ms = member_int(body, "startTime", 0, 2**63 - 1)
        end_ms = member_int(body, "endTime", 0, 2**63 - 1)
        limit = member_int(body, "limit", 1, 10_000, default=10_000) or 10_000
        after = tuple(_untoken(body["nextToken"])) if body.get("nextToken") else None
        matcher = _matcher(member_str(body, "filterPattern"))
        logs = self.region(region)

        def work() -> tuple[list[str], list[Event]]:
            if not logs.has_group(group):
                raise _not_found("log group")
            streams = [s for s in logs.store.streams(group)
                       if (not names or s in names) and (not prefix or s.startswith(prefix))]
            found: list[Event] = []
            for s in streams:
                found += [e for e in logs.events(group, s)
                          if (start_ms is None or e.timestamp >= start_ms) and (end_ms is None or e.timestamp < end_ms)
                          and (after is None or e.key > after) and matcher(e.message)]
            found.sort(key=lambda e: e.key)
            return streams, found

        streams, found = await self._read(work)
        page = found[:limit]
        out: dict[str, Any] = {
            "events": [{"logStreamName": e.stream, "timestamp": e.timestamp, "message": e.message,
                        "ingestionTime": e.ingestion_ms, "eventId": e.event_id} for e in page],
            "searchedLogStreams": [{"logStreamName": s, "searchedCompletely": len(found) <= limit} for s in streams],
        }
        if len(found) > limit:
            out["nextToken"] = _token(list(page[-1].key))
        return out

    # -- StartLiveTail -------------------------------------------------------------------------------------

    async def start_live_tail(self, call: Call, body: dict[str, Any]) -> web.StreamResponse:
        idents = body.get("logGroupIdentifiers")
        if not isinstance(idents, list) or not 1 <= len(idents) <= 10 or not all(isinstance(i, str) for i in idents):
            raise _invalid("logGroupIdentifiers must be a list of 1 to 10 log group ARNs.")
        groups = [_parse_group(call.region, i, required=True) for i in idents]
        names = body.get("logStreamNames") or []
        prefixes = body.get("logStreamNamePrefixes") or []
        if names and prefixes:
            raise _invalid("logStreamNames and logStreamNamePrefixes are mutually exclusive.")
        if (names or prefixes) and len(groups) > 1:
            raise _invalid("logStreamNames and logStreamNamePrefixes need exactly one log group.")
        pattern = member_str(body, "logEventFilterPattern")
        matcher = _matcher(pattern)

        def prime() -> list[dict[str, int]]:
            cursors = []
            for region, group in groups:
                if not self.region(region).has_group(group):
                    raise _not_found("log group")
                offsets: dict[str, int] = {}
                self.region(region).prime(group, offsets)
                cursors.append(offsets)
            return cursors

        cursors: list[dict[str, int]] = await self._read(prime)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/vnd.amazon.eventstream",
                                                           "x-amzn-RequestId": call.request_id})
        response.enable_chunked_encoding()
        await response.prepare(call.request)
        start: dict[str, Any] = {"requestId": call.request_id, "sessionId": str(uuid.uuid4()),
                                 "logGroupIdentifiers": idents}
        if names:
            start["logStreamNames"] = names
        if prefixes:
            start["logStreamNamePrefixes"] = prefixes
        if pattern:
            start["logEventFilterPattern"] = pattern
        try:
            await response.write(eventstream.event("initial-response", b"{}"))
            await response.write(eventstream.event("sessionStart", orjson.dumps(start)))
            deadline = time.monotonic() + self.live_tail_max_s
            while time.monotonic() < deadline:
                await asyncio.sleep(self.live_tail_interval_s)

                def poll() -> list[dict[str, Any]]:
                    results: list[dict[str, Any]] = []
                    for (region, group), ident, offsets in zip(groups, idents, cursors, strict=True):
                        results.extend(
                            {"logStreamName": e.stream, "logGroupIdentifier": ident, "message": e.message,
                             "timestamp": e.timestamp, "ingestionTime": e.ingestion_ms}
                            for e in self.region(region).read_new(group, offsets)
                            if (not names or e.stream in names) and (not prefixes or e.stream.startswith(tuple(prefixes)))
                            and matcher(e.message))
                    return results

                results = await self._read(poll)
                sampled = len(results) > LIVE_TAIL_BATCH
                update = {"sessionMetadata": {"sampled": sampled}, "sessionResults": results[-LIVE_TAIL_BATCH:]}
                await response.write(eventstream.event("sessionUpdate", orjson.dumps(update)))
            await response.write(eventstream.exception("SessionTimeoutException", orjson.dumps(
                {"message": "The Live Tail session has ended after its maximum duration."})))
            await response.write_eof()
        except ConnectionError:  # the client closed the session (Ctrl-C): nothing to answer
            pass
        return response


def _parse_group(region: str, ident: str | None, *, required: bool) -> tuple[str, str]:
    if not ident:
        if required:
            raise _invalid("Either logGroupName or logGroupIdentifier must be given.")
        return region, ""
    if ident.startswith("arn:"):
        parts = ident.split(":", 6)
        if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
            raise _invalid(f"{ident} is not a log group ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME).")
        name = parts[6]
        if name.endswith(":*"):
            name = name[:-2]
        return parts[3] or region, name
    return region, ident


def _matcher(pattern: str | None) -> Matcher:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        raise _invalid(str(exc)) from None


def _stream_shape(s: StreamInfo, group: str, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "logStreamName": s.name, "creationTime": s.created_ms,
        "arn": f"{group_arn(group, region, star=False)}:log-stream:{s.name}",
        "storedBytes": 0, "lastIngestionTime": s.last_ingestion_ms,
        "uploadSequenceToken": f"{s.stored_bytes:056d}",
    }
    if s.first_event_ms is not None:
        out["firstEventTimestamp"] = s.first_event_ms
    if s.last_event_ms is not None:
        out["lastEventTimestamp"] = s.last_event_ms
    return out
