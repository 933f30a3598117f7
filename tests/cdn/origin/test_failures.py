"""FailureLog (edge.cdn.origin.failures): one console line per origin failure cause, rate-limited."""

from __future__ import annotations

import logging

import pytest

from edge.cdn.origin.failures import FailureLog


def test_one_line_per_cause_then_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    failures = FailureLog(logging.getLogger("edgelab.test"), interval=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="edgelab.test"):
        assert failures.report("OriginUnavailable", "a.test", 502, "origin a.test unreachable: refused")
        assert not failures.report("OriginUnavailable", "a.test", 502, "origin a.test unreachable: refused")
        assert failures.report("OriginTimeout", "a.test", 504, "no answer")  # another cause
        assert failures.report("OriginUnavailable", "b.test", 502,
                               "origin b.test unreachable: ClientConnectorDNSError(gaierror(-2, 'Name or service "
                               "not known'))")
        now[0] = 31.0
        assert failures.report("OriginUnavailable", "a.test", 502, "origin a.test unreachable: refused")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert lines[0].startswith("origin a.test failed: 502 OriginUnavailable: origin a.test unreachable: refused")
    assert "debug_headers = true" in lines[0]
    assert "is b.test mapped in the settings' [origins]?" in lines[2]
    assert "[1 more since the last line]" in lines[3] and "debug_headers" not in lines[3]
