"""The per-region limiter shared by processes (execution/shared_limiter): two limiters on one directory behave
as one (OFD locks conflict between open files even in one process), and a real process killed with -9 gives its
slots back through the kernel."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.invocation.execution.limiter import ConcurrencyLimiter, Lease
from edge.invocation.execution.shared_limiter import SharedConcurrencyLimiter, SlotFile, make_limiter
from edge.invocation.models import ThrottleReason

A = ("a", "$LATEST", "r1")
A1 = ("a", "1", "r1")
B = ("b", "$LATEST", "r1")
REPO = Path(__file__).resolve().parents[3]


def _pair(tmp_path: Path, limit: int = 10, reserved: dict[str, int] | None = None,
          ) -> tuple[SharedConcurrencyLimiter, SharedConcurrencyLimiter]:
    root = tmp_path / "concurrency"
    return (SharedConcurrencyLimiter(root, limit, reserved, region="us-east-1"),
            SharedConcurrencyLimiter(root, limit, reserved, region="us-east-1"))


def test_reserved_concurrency_holds_across_limiters(tmp_path: Path) -> None:
    api, pop = _pair(tmp_path, reserved={"a": 2})
    first, second = api.acquire(A), pop.acquire(A)
    assert isinstance(first, Lease) and isinstance(second, Lease) and first.reserved and second.reserved
    assert api.acquire(A) is ThrottleReason.RESERVED
    assert pop.acquire(A) is ThrottleReason.RESERVED
    assert api.region_inflight("a") == 2 and pop.inflight["a"] == 1
    first.release()
    again = pop.acquire(A)
    assert isinstance(again, Lease) and pop.inflight["a"] == 2
    assert api.acquire(A) is ThrottleReason.RESERVED
    assert isinstance(api.acquire(B), Lease)  # other functions use the unreserved pool


def test_reserved_zero_and_override_as_before(tmp_path: Path) -> None:
    api, pop = _pair(tmp_path, reserved={"a": 0})
    assert api.acquire(A) is ThrottleReason.RESERVED
    held = pop.acquire(A, reserved=1)  # the invocation's own reserved value wins, as in ConcurrencyLimiter
    assert isinstance(held, Lease)
    assert api.acquire(A, reserved=1) is ThrottleReason.RESERVED


def test_unreserved_pool_is_shared_and_excludes_reservations(tmp_path: Path) -> None:
    api, pop = _pair(tmp_path, limit=5, reserved={"a": 2})
    api.set_provisioned(("c", "1", "r"), 1)
    pop.set_provisioned(("c", "1", "r"), 1)
    assert api.unreserved_capacity() == pop.unreserved_capacity() == 2
    leases = [api.acquire(B), pop.acquire(B)]
    assert all(isinstance(x, Lease) for x in leases)
    assert api.acquire(B) is ThrottleReason.ACCOUNT and pop.acquire(B) is ThrottleReason.ACCOUNT
    assert isinstance(pop.acquire(A), Lease)  # reserved capacity stays guaranteed
    assert api.region_inflight() == 2
    leases[1].release()
    assert isinstance(api.acquire(B), Lease)
    assert pop.acquire(B) is ThrottleReason.ACCOUNT


def test_provisioned_leases_stay_in_their_process_then_spill_into_the_shared_reservation(tmp_path: Path) -> None:
    api, pop = _pair(tmp_path, reserved={"a": 2})
    api.set_provisioned(A1, 1)
    pop.set_provisioned(A1, 1)
    p1, p2 = api.acquire(A1), pop.acquire(A1)
    assert isinstance(p1, Lease) and p1.provisioned and isinstance(p2, Lease) and p2.provisioned
    spill = api.acquire(A1)  # reserved 2 - provisioned 1 = one on-demand slot for the region
    assert isinstance(spill, Lease) and not spill.provisioned and spill.reserved
    assert pop.acquire(A1) is ThrottleReason.RESERVED
    assert pop.acquire(A) is ThrottleReason.RESERVED
    spill.release()
    assert isinstance(pop.acquire(A), Lease)


def test_regions_are_independent_and_capacity_changes_apply(tmp_path: Path) -> None:
    root = tmp_path / "c"
    east = SharedConcurrencyLimiter(root, 1, region="us-east-1")
    fra = SharedConcurrencyLimiter(root, 1, region="eu-central-1")
    other_east = SharedConcurrencyLimiter(root, 1, region="us-east-1")
    assert isinstance(east.acquire(B), Lease) and isinstance(fra.acquire(B), Lease)
    assert other_east.acquire(B) is ThrottleReason.ACCOUNT
    other_east.configure(account_limit=2, reserved={})
    assert isinstance(other_east.acquire(B), Lease)  # a raised limit applies at once
    assert "dir=" in repr(east) and "us-east-1" in repr(east)


def test_release_is_idempotent_and_close_gives_everything_back(tmp_path: Path) -> None:
    api, pop = _pair(tmp_path, reserved={"a": 1})
    lease = api.acquire(A)
    assert isinstance(lease, Lease)
    lease.release()
    lease.release()
    lease = api.acquire(A)
    assert isinstance(lease, Lease) and isinstance(api.acquire(B), Lease)
    api.close()
    api.close()
    lease.release()  # after close: nothing to unlock, no error
    assert isinstance(pop.acquire(A), Lease)
    with pytest.raises(RuntimeError, match="closed"):
        api.acquire(A)


def test_slot_file_prefers_the_slot_given_back(tmp_path: Path) -> None:
    mine, theirs = SlotFile(tmp_path / "s.lock"), SlotFile(tmp_path / "s.lock")
    assert theirs.take(3) == 0
    assert mine.take(3) == 1 and mine.take(3) == 2 and mine.take(3) is None
    mine.give(1)
    assert mine.take(3) == 1  # the hint: one fcntl on the warm path
    assert mine.take(0) is None and mine.busy_elsewhere(3) == 1
    theirs.close()
    assert mine.take(3) == 0 and mine.held() == 3
    mine.give(7)  # never taken: nothing happens


def test_function_names_map_to_safe_files(tmp_path: Path) -> None:
    lim = SharedConcurrencyLimiter(tmp_path, 10, {"../x": 1, "fn_A-1": 1}, region="us-east-1")
    assert isinstance(lim.acquire(("../x", "$LATEST", "r")), Lease)
    assert isinstance(lim.acquire(("fn_A-1", "$LATEST", "r")), Lease)
    names = sorted(p.name for p in (tmp_path / "us-east-1" / "reserved").iterdir())
    assert "fn_A-1.lock" in names and all("/" not in n and not n.startswith(".") for n in names)
    assert (tmp_path / "us-east-1").stat().st_mode & 0o077 == 0
    assert (tmp_path / "us-east-1" / "unreserved.lock").stat().st_mode & 0o077 == 0
    with pytest.raises(ValueError, match="region"):
        SharedConcurrencyLimiter(tmp_path, 10, region="../etc")


def test_make_limiter_standalone_and_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plain = make_limiter(None, "us-east-1", 10)
    assert type(plain) is ConcurrencyLimiter
    assert isinstance(make_limiter(tmp_path / "c", "us-east-1", 10), SharedConcurrencyLimiter)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, "edgelab.invocation.limiter"):
        fallback = make_limiter(blocker, "us-east-1", 10, {"a": 1})
    assert type(fallback) is ConcurrencyLimiter and fallback.reserved == {"a": 1}
    assert "counted per process" in caplog.text and str(blocker) in caplog.text


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edge.invocation.execution.shared_limiter import SharedConcurrencyLimiter
    lim = SharedConcurrencyLimiter(Path(sys.argv[1]), 10, {"a": 2}, region="us-east-1")
    leases = [lim.acquire(("a", "$LATEST", "r1")), lim.acquire(("b", "$LATEST", "r1"))]
    print(" ".join(type(x).__name__ for x in leases), flush=True)
    time.sleep(60)
""")


def test_a_holder_killed_with_sigkill_frees_its_slots(tmp_path: Path) -> None:
    root = tmp_path / "concurrency"
    me = SharedConcurrencyLimiter(root, 10, {"a": 2}, region="us-east-1")
    holders = [subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], cwd=REPO, stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(2)]
    try:
        for h in holders:
            assert h.stdout is not None and h.stdout.readline().split() == [b"Lease", b"Lease"]
        assert me.acquire(A) is ThrottleReason.RESERVED
        assert me.region_inflight("a") == 2 and me.region_inflight() == 2
        holders[0].send_signal(signal.SIGKILL)
        assert holders[0].wait(timeout=10) == -signal.SIGKILL
        lease = me.acquire(A)  # the kernel dropped the dead holder's locks
        assert isinstance(lease, Lease)
        assert me.acquire(A) is ThrottleReason.RESERVED
        assert me.region_inflight() == 1
    finally:
        for h in holders:
            h.kill()
            h.wait(timeout=10)
            assert h.stdout is not None
            h.stdout.close()


def test_stale_map_bytes_of_a_dead_holder_are_swept_a_bounded_number_per_acquire(tmp_path: Path) -> None:
    import mmap

    from edge.invocation.execution.shared_limiter import MAX_SLOTS, SWEEP

    live, mine = SlotFile(tmp_path / "s.lock"), SlotFile(tmp_path / "s.lock")
    assert [live.take(40) for _ in range(3)] == [0, 1, 2]
    with open(tmp_path / "s.lock", "r+b") as f, mmap.mmap(f.fileno(), MAX_SLOTS) as mm:
        mm[3:40] = b"\1" * 37  # what a holder killed with -9 leaves: bytes set, no locks
    assert mine.take(40) == 3  # nothing free in the map: the sweep finds slot 3 unlocked
    got = [mine.take(40) for _ in range(36)]
    assert got == list(range(4, 40))
    assert mine.take(40) is None and live.take(40) is None  # all 40 really held: a throttle
    mine.give(17)
    assert live.take(40) == 17  # a given-back slot shows free in the map at once
    assert SWEEP < 40
