"""The merged log view behind ``edgelab logs`` (edge/control/logs_api/merged.py) over log stores written the way the
invocation core and the POPs write them: names (functions, AWS group names, unknown ones), regions and POPs, the
``X-Amz-Cf-Id`` -> Lambda request id mapping, ``since``, validation lines, and tracebacks shown with the function's
own file names."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edge.cdn.lambda_edge.runner import edge_request_id
from edge.control.logs_api.merged import LogQuery, LogSources, UnknownLogName, list_groups, read_merged
from edge.invocation import LogStore

NOW = int(time.time() * 1000)
SHA = "ab" * 32
LAYER_SHA = "cd" * 32
CF_ID = "vTcKSqU4B4a6YO5tuVYLoYEZAbcdefghijklmnopqrstuvwxyz012345=="
STREAM = "2026/12/04/[1]" + "a" * 32


def write(root: Path, group: str, stream: str, records: list[tuple[int, str, list[str]]]) -> None:
    async def go() -> None:
        store = LogStore(root)
        for ts, rid, lines in records:
            store.append(group, stream, lines, rid, ts_ms=ts)
        await store.flush()

    asyncio.run(go())


@pytest.fixture
def logs(tmp_path: Path) -> tuple[Path, LogSources]:
    root = tmp_path / "logs"
    vr = edge_request_id(CF_ID, "viewer-request")
    code = tmp_path / "code" / "extracted"
    trace = (f"[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File "
             f"\"{code}/{SHA}/index.py\", line 3, in handler\r\u00a0\u00a0File \"{code}/{LAYER_SHA}/python/lib.py\","
             " line 1, in f")
    write(root / "eu-central-1", "/aws/lambda/us-east-1.greeter", STREAM, [
        (NOW - 5000, vr, [f"START RequestId: {vr} Version: 1", trace, f"END RequestId: {vr}"]),
        (NOW - 100, "other-id", ["START RequestId: other-id Version: 1"]),
    ])
    write(root / "us-east-1", "/aws/lambda/greeter", STREAM, [(NOW - 4000, "api-id", ["START RequestId: api-id"])])
    write(root / "eu-central-1", "/aws/cloudfront/LambdaEdge/EDFDVBD6EXAMPLE", "FRA/2026/12/04", [
        (NOW - 4900, CF_ID, [f"{CF_ID} ERROR Validation error: bad Host (function: greeter:1, event: viewer-request)"]),
        (NOW - 4800, "x", ["x ERROR Validation error: no (function: someone-else:1, event: viewer-request)"]),
    ])
    sources = LogSources(functions={"greeter"}, distribution_id="EDFDVBD6EXAMPLE",
                         pops_by_region={"eu-central-1": ["FRA"], "us-east-1": ["IAD"]},
                         code={"greeter": ({SHA}, tmp_path / "functions" / "greeter")})
    return root, sources


def test_a_function_merges_its_groups_regions_and_validation_lines(logs: tuple[Path, LogSources]) -> None:
    root, sources = logs
    out = read_merged(root, LogQuery("greeter", tail=0), sources)
    events = out["events"]
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert {(e["group"], e["region"], e["pop"]) for e in events} == {
        ("/aws/lambda/us-east-1.greeter", "eu-central-1", "FRA"), ("/aws/lambda/greeter", "us-east-1", "API"),
        ("/aws/cloudfront/LambdaEdge/EDFDVBD6EXAMPLE", "eu-central-1", "FRA")}
    validation = [e["message"] for e in events if e["group"].startswith("/aws/cloudfront/")]
    assert validation == [f"{CF_ID} ERROR Validation error: bad Host (function: greeter:1, event: viewer-request)"]
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in events)
    assert len({e["id"] for e in events}) == len(events)


def test_the_cf_id_a_viewer_saw_finds_the_lambda_lines_of_its_request(logs: tuple[Path, LogSources]) -> None:
    root, sources = logs
    events = read_merged(root, LogQuery("greeter", request_id=CF_ID, tail=0), sources)["events"]
    messages = [e["message"] for e in events]
    assert messages[0].startswith("START RequestId: " + edge_request_id(CF_ID, "viewer-request"))
    assert any("Validation error: bad Host" in m for m in messages)
    assert not any("other-id" in m or "api-id" in m for m in messages)
    by_lambda_id = read_merged(root, LogQuery("greeter", request_id="api-id", tail=0), sources)["events"]
    assert [e["message"] for e in by_lambda_id] == ["START RequestId: api-id"]


def test_tracebacks_name_the_functions_own_files(logs: tuple[Path, LogSources], tmp_path: Path) -> None:
    root, sources = logs
    trace = next(e["message"] for e in read_merged(root, LogQuery("greeter", tail=0), sources)["events"]
                 if e["message"].startswith("[ERROR]"))
    assert "/code/extracted/" not in trace
    assert f'File "{tmp_path}/functions/greeter/index.py", line 3' in trace
    assert 'File "/opt/python/lib.py"' in trace  # a layer's file, as AWS mounts it
    undeclared = LogSources(functions={"greeter"}, code={"greeter": ({SHA}, None)})
    trace = next(e["message"] for e in read_merged(root, LogQuery("greeter", tail=0), undeclared)["events"]
                 if e["message"].startswith("[ERROR]"))
    assert 'File "/var/task/index.py"' in trace


def test_group_names_since_region_and_tail(logs: tuple[Path, LogSources]) -> None:
    root, sources = logs
    group = read_merged(root, LogQuery("/aws/cloudfront/LambdaEdge/EDFDVBD6EXAMPLE", tail=0), sources)
    assert group["groups"] == ["/aws/cloudfront/LambdaEdge/EDFDVBD6EXAMPLE"] and len(group["events"]) == 2
    recent = read_merged(root, LogQuery("greeter", since_ms=NOW - 1000, tail=0), sources)["events"]
    assert [e["message"] for e in recent] == ["START RequestId: other-id Version: 1"]
    east = read_merged(root, LogQuery("greeter", region="us-east-1", tail=0), sources)["events"]
    assert {e["region"] for e in east} == {"us-east-1"}
    assert len(read_merged(root, LogQuery("greeter", tail=2), sources)["events"]) == 2
    edge_group = read_merged(root, LogQuery("/aws/lambda/us-east-1.greeter", tail=0), sources)["events"]
    assert {e["group"] for e in edge_group} == {"/aws/lambda/us-east-1.greeter"}


def test_unknown_names_are_errors_naming_what_exists(logs: tuple[Path, LogSources]) -> None:
    root, sources = logs
    with pytest.raises(UnknownLogName, match=r"nosuchfn.*greeter"):
        read_merged(root, LogQuery("nosuchfn"), sources)
    with pytest.raises(UnknownLogName, match="/aws/cloudfront/LambdaEdge/OTHER"):
        read_merged(root, LogQuery("/aws/cloudfront/LambdaEdge/OTHER"), sources)
    # the distribution's validation group and a known function's groups exist before anything was logged
    empty = LogSources(functions={"quiet"}, distribution_id="EDIST")
    assert read_merged(root, LogQuery("/aws/cloudfront/LambdaEdge/EDIST"), empty)["events"] == []
    assert read_merged(root, LogQuery("/aws/lambda/us-east-1.quiet"), empty)["events"] == []
    assert read_merged(root, LogQuery("quiet"), empty)["events"] == []


def test_list_groups(logs: tuple[Path, LogSources]) -> None:
    root, _ = logs
    groups = list_groups(root)
    assert [(g["group"], g["region"]) for g in groups] == [
        ("/aws/cloudfront/LambdaEdge/EDFDVBD6EXAMPLE", "eu-central-1"), ("/aws/lambda/greeter", "us-east-1"),
        ("/aws/lambda/us-east-1.greeter", "eu-central-1")]
    assert all(g["last_event_ms"] for g in groups)
