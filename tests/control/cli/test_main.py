"""The `edgelab` command line without a stack (edge/control/cli/): every option documented, ``--version``,
``generate-event`` papercuts, ``--since`` parsing, how log events and metrics are printed, ``queue list`` when there
is nothing, and what ``invoke`` says a POP would answer (the POP's own result checks)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.control.cli import queues
from edge.control.cli.events import CliEvent, build_cli_event, event_from_payload, pop_verdict
from edge.control.cli.logs import attached_values, format_event, parse_since
from edge.control.cli.main import build_parser, main
from edge.control.cli.metrics import hit_ratio, summary_lines

REPO = Path(__file__).resolve().parents[3]


def _parsers(parser: argparse.ArgumentParser, path: str = "edgelab") -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:  # reading argparse's parser tree (no public API for it); nothing is written
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _parsers(sub, f"{path} {name}")
    return out


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest for a in action._choices_actions if a.help}
                missing += [f"{path} {name} (command)" for name in action.choices if name not in helps]
            elif not action.help and action.help != argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help text: {missing}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("edgelab ") and out.split()[1][0].isdigit()


def test_generate_event_takes_the_event_type_as_a_positional_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-event", "origin-response", "--status", "404"]) == 0
    cf = json.loads(capsys.readouterr().out)["Records"][0]["cf"]
    assert cf["config"]["eventType"] == "origin-response" and cf["response"]["status"] == "404"
    assert main(["generate-event", "-e", "viewer-response"]) == 0  # the option still works
    with pytest.raises(SystemExit, match="given twice"):
        main(["generate-event", "viewer-request", "-e", "origin-request"])


def test_generate_event_splits_the_query_string_off_the_uri(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-event", "viewer-request", "--uri", "/a?x=1&y=2"]) == 0
    request = json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]
    assert (request["uri"], request["querystring"]) == ("/a", "x=1&y=2")
    assert main(["generate-event", "--uri", "/b", "--querystring", "z=3"]) == 0
    request = json.loads(capsys.readouterr().out)["Records"][0]["cf"]["request"]
    assert (request["uri"], request["querystring"]) == ("/b", "z=3")
    with pytest.raises(SystemExit, match="give one"):
        main(["generate-event", "--uri", "/a?x=1", "--querystring", "y=2"])
    with pytest.raises(SystemExit, match="must start with '/'"):
        main(["generate-event", "--uri", "a"])


def test_generate_event_runs_as_a_program_with_the_positional_form() -> None:
    out = subprocess.run([sys.executable, "-m", "edge.control.cli.main", "generate-event", "viewer-request"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Records"][0]["cf"]["config"]["eventType"] == "viewer-request"


def test_parse_since() -> None:
    now = 1_800_000_000_000
    assert parse_since("30s", now) == now - 30_000
    assert parse_since("10m", now) == now - 600_000
    assert parse_since("2h", now) == now - 7_200_000
    assert parse_since("1d", now) == now - 86_400_000
    assert parse_since("1700000000000", now) == 1_700_000_000_000
    assert parse_since("2026-12-04T22:00:00Z", now) == parse_since("2026-12-04T22:00:00", now)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_since("yesterday", now)
    with pytest.raises(SystemExit):  # argparse refuses it with the same message
        build_parser().parse_args(["logs", "fn", "--since", "yesterday"])


def test_logs_takes_a_request_id_that_starts_with_a_dash() -> None:
    """An X-Amz-Cf-Id is URL-safe base64: one in 64 starts with ``-`` (found by a fresh clone's dev-loop test)."""
    cf_id = "-Vk0zrr8B4rxAmEmyC_4Egj6pA3Skd1rXyUvlYhfqErnE-BSQdhulQ=="
    argv = ["logs", "fn", "--request-id", cf_id, "--tail", "5"]
    assert attached_values(argv) == ["logs", "fn", f"--request-id={cf_id}", "--tail", "5"]
    args = build_parser().parse_args(attached_values(argv))
    assert (args.request_id, args.tail) == (cf_id, 5)
    # an option after it is still an option (the value is missing: argparse says so), and so is an abbreviation
    for missing in (["logs", "fn", "--request-id", "--tail", "5"], ["logs", "fn", "--request-id", "--ta", "5"],
                    ["logs", "fn", "--request-id", "-f"]):
        assert attached_values(missing) == missing
    # main joins it before parsing: the API call is what fails here, not the arguments (argparse would exit 2)
    with pytest.raises(SystemExit, match="cannot reach"):
        main(["logs", "fn", "--request-id", cf_id, "--api", "http://127.0.0.1:9"])


def test_format_event_separates_a_traceback() -> None:
    ev = {"time": "2026-12-04T22:00:00.000Z", "pop": "FRA", "region": "eu-central-1",
          "group": "/aws/lambda/us-east-1.fn",
          "message": "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File \"/f/index.py\", "
                     "line 3, in handler\r\u00a0\u00a0\u00a0\u00a0raise ValueError('boom')\n"}
    lines = format_event(ev).split("\n")
    assert lines[0] == ("2026-12-04T22:00:00.000Z FRA  eu-central-1   /aws/lambda/us-east-1.fn  "
                        "[ERROR] ValueError: boom")
    assert lines[1:] == ["    Traceback (most recent call last):", '      File "/f/index.py", line 3, in handler',
                         "        raise ValueError('boom')", ""]
    one = format_event({**ev, "message": "START RequestId: r Version: 1\n"})
    assert one.endswith("START RequestId: r Version: 1") and "\n" not in one


def test_metrics_summary_has_one_hit_count_and_the_hit_ratio() -> None:
    by = {"Hit from cloudfront": 6, "RefreshHit from cloudfront": 2, "Miss from cloudfront": 8,
          "LambdaGeneratedResponse from cloudfront": 3}
    assert hit_ratio(by) == 0.5
    assert hit_ratio({}) is None
    data: dict[str, Any] = {
        "control": {"us-east-1": {"fn": {"1": {"invocations": 2, "cold_starts": 1, "errors": 0, "throttles": 0,
                                               "duration_ms": {"p50": 1.5, "p95": 3.0}}}}},
        "pops": {"IAD": {"region": "us-east-1", "requests": 19, "by_x_cache": by, "errors": 0, "generated": 3,
                         "cache": {"hits": 11, "misses": 8},
                         "functions": {"us-east-1": {"us-east-1.fn": {"1": {"invocations": 19, "cold_starts": 1}}}}},
                 "NRT": {"error": "POP NRT unreachable"}}}
    lines = summary_lines(data)
    iad = next(line for line in lines if line.startswith("IAD"))
    assert iad.split()[:8] == ["IAD", "us-east-1", "19", "6", "2", "8", "50.0", "%"]
    assert "11" not in iad.split()  # the store's lookup counter is not shown as a second "hits"
    assert any("NRT" in line and "unreachable" in line for line in lines)
    assert any(line.split()[:5] == ["IAD", "us-east-1", "us-east-1.fn", "1", "19"] for line in lines)
    assert any(line.split()[:5] == ["control", "us-east-1", "fn", "1", "2"] for line in lines)


def test_queue_list_says_when_there_are_none(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(queues, "call_api", lambda api, method, path, body=None: {"queues": []})
    assert main(["queue", "list"]) == 0
    assert "no queues yet" in capsys.readouterr().out


def _event(*argv: str) -> CliEvent:
    return build_cli_event(build_parser().parse_args(["invoke", "fn", *argv]))


def test_invoke_verdict_a_changed_host_is_502_lambda_validation_error() -> None:
    ev = _event("-e", "viewer-request", "--uri", "/x")
    request = {**ev.event["Records"][0]["cf"]["request"]}
    request["headers"] = {**request["headers"], "host": [{"key": "Host", "value": "evil.example"}]}
    ok, verdict = pop_verdict(ev, "fn", status=200, function_error=None, body=json.dumps(request).encode(),
                              executed_version="1")
    assert not ok
    assert verdict.startswith("the POP would answer 502 LambdaValidationError") and "Host" in verdict


def test_invoke_verdicts_for_valid_results_errors_and_throttles() -> None:
    ev = _event("-e", "viewer-request", "--uri", "/x")
    request = ev.event["Records"][0]["cf"]["request"]
    ok, verdict = pop_verdict(ev, "fn", status=200, function_error=None, body=json.dumps(request).encode(),
                              executed_version="1")
    assert ok and verdict == "the POP would continue to its cache and then the origin with GET /x"
    ok, verdict = pop_verdict(ev, "fn", status=200, function_error=None,
                              body=b'{"status": "302", "headers": {"location": [{"value": "/y"}]}}',
                              executed_version="1")
    assert ok and "302" in verdict and "LambdaGeneratedResponse" in verdict
    ok, verdict = pop_verdict(ev, "fn", status=200, function_error="Unhandled",
                              body=b'{"errorType": "ValueError", "errorMessage": "boom"}', executed_version="1")
    assert not ok and verdict.startswith("the POP would answer 503 LambdaExecutionError") and "boom" in verdict
    ok, verdict = pop_verdict(ev, "fn", status=429, function_error=None, body=b"{}", executed_version="",
                              error_type="TooManyRequestsException")
    assert not ok and "503 LambdaLimitExceeded" in verdict
    response_event = _event("-e", "viewer-response", "--status", "200")
    changed = {"status": "404", "headers": {}}
    ok, verdict = pop_verdict(response_event, "fn", status=200, function_error=None,
                              body=json.dumps(changed).encode(), executed_version="1")
    assert not ok and "502 LambdaValidationError" in verdict


def test_a_cloudfront_event_given_as_payload_is_checked_too() -> None:
    ev = _event("-e", "origin-request", "--uri", "/o", "-H", "X-A: 1")
    parsed = event_from_payload(json.dumps(ev.event).encode())
    assert parsed is not None and parsed.event_type == "origin-request"
    assert (parsed.request.uri, parsed.request.origin is not None) == ("/o", True)
    assert ("X-A", "1") in parsed.request.headers
    assert event_from_payload(b'{"key": "value"}') is None
    assert event_from_payload(b"not json") is None
