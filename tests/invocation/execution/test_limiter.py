"""Concurrency limits: pure limiter unit tests, then throttling through a real Executor."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.invocation.execution.limiter import ConcurrencyLimiter, Lease
from edge.invocation.models import Outcome, ThrottleReason
from tests.invocation.fixtures.support import call, code_dir, make_spec, running_executor

A = ("a", "$LATEST", "r1")
A1 = ("a", "1", "r1")
B = ("b", "$LATEST", "r1")


def test_reserved_zero_throttles_everything() -> None:
    lim = ConcurrencyLimiter(10, {"a": 0})
    assert lim.acquire(A) is ThrottleReason.RESERVED
    assert isinstance(lim.acquire(B), Lease)


def test_reserved_caps_and_release_frees() -> None:
    lim = ConcurrencyLimiter(10)
    first = lim.acquire(A, reserved=1)
    assert isinstance(first, Lease) and first.reserved
    assert lim.acquire(A, reserved=1) is ThrottleReason.RESERVED
    first.release()
    first.release()  # idempotent
    assert isinstance(lim.acquire(A, reserved=1), Lease)
    assert lim.inflight["a"] == 1


def test_account_pool_excludes_reservations_and_provisioned() -> None:
    lim = ConcurrencyLimiter(5, {"a": 2})
    lim.set_provisioned(("c", "1", "r"), 1)
    assert lim.unreserved_capacity() == 2
    leases = [lim.acquire(B), lim.acquire(B)]
    assert all(isinstance(x, Lease) for x in leases)
    assert lim.acquire(B) is ThrottleReason.ACCOUNT
    assert isinstance(lim.acquire(A), Lease)  # reserved capacity is guaranteed
    leases[0].release()
    assert isinstance(lim.acquire(B), Lease)


def test_provisioned_preferred_then_spillover() -> None:
    lim = ConcurrencyLimiter(10, {"a": 1})
    lim.set_provisioned(A1, 1)
    p = lim.acquire(A1)
    assert isinstance(p, Lease) and p.provisioned
    # reserved 1 entirely taken by provisioned: $LATEST and spillover of version 1 are throttled (AWS snapshot)
    assert lim.acquire(A) is ThrottleReason.RESERVED
    assert lim.acquire(A1) is ThrottleReason.RESERVED
    p.release()
    assert lim.acquire(A1).provisioned  # type: ignore[union-attr]
    lim.set_provisioned(A1, 0)
    assert not lim.has_provisioned(A1)


def test_configure_replaces_reservations() -> None:
    lim = ConcurrencyLimiter(10, {"a": 0})
    lim.configure(account_limit=1, reserved={})
    assert isinstance(lim.acquire(A), Lease)
    assert lim.acquire(B) is ThrottleReason.ACCOUNT
    assert "limit=1" in repr(lim)


async def test_throttling_through_executor(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    sleeper = make_spec(code, "basic.sleep", name="sleeper")
    echo = make_spec(code, "basic.echo", name="echo")
    async with running_executor(tmp_path) as ex:
        zero = await call(ex, echo, {}, reserved_concurrency=0)
        assert zero.outcome is Outcome.THROTTLED and zero.throttle_reason is ThrottleReason.RESERVED
        assert zero.payload == b""
        ex.configure_concurrency(account_limit=1000, reserved={})
        r1, r2 = await asyncio.gather(call(ex, sleeper, {"seconds": 0.3}, reserved_concurrency=1),
                                      call(ex, sleeper, {"seconds": 0.3}, reserved_concurrency=1))
        assert sorted(r.outcome.value for r in (r1, r2)) == ["ok", "throttled"]
        assert {r.throttle_reason for r in (r1, r2)} == {None, ThrottleReason.RESERVED}
        # account limit, per region: 1 in us-east-1, another region is independent
        ex.configure_concurrency(account_limit=1, reserved={})
        r1, r2, r3 = await asyncio.gather(call(ex, sleeper, {"seconds": 0.3}),
                                          call(ex, echo, {}),
                                          call(ex, echo, {}, region="eu-central-1"))
        assert r1.outcome is Outcome.OK and r3.outcome is Outcome.OK
        assert r2.outcome is Outcome.THROTTLED and r2.throttle_reason is ThrottleReason.ACCOUNT
        snap = ex.metrics.snapshot()["us-east-1"]
        assert snap["echo"]["$LATEST"]["throttles"] == 2 and snap["sleeper"]["$LATEST"]["throttles"] == 1
