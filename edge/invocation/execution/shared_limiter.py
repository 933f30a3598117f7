"""One concurrency limit per region across every process of a stack (the control process's API and async
delivery, and each POP), with no round trip and no daemon: slots are byte-range locks in lock files.

AWS counts concurrency per account and per Region: a function's reserved concurrency caps its concurrent
executions in the Region, and the functions without one share the Region's unreserved concurrency, whichever
caller started them (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). Before this, every process had its own
:class:`~edge.invocation.execution.limiter.ConcurrencyLimiter`, so a reserved concurrency of 2 allowed 2 per process.

Design (``<dir>/<region>/``)::

    unreserved.lock          byte i = unreserved slot i        (slots 0 .. unreserved capacity - 1)
    reserved/<function>.lock byte i = reserved on-demand slot i (slots 0 .. reserved - provisioned - 1)

A slot is taken by a non-blocking, exclusive open-file-description lock on its byte (``F_OFD_SETLK``, Linux >= 3.15)
and given back by unlocking it: the lock is the authority. The kernel drops a process's locks when it dies, however
it dies (``kill -9`` included), so a crashed holder never leaks a slot. OFD locks belong to the open file, not to
the process: two limiters in one process (tests, or two executors) conflict exactly as two processes do, and
closing one limiter's file does not release another's locks.

Finding a free slot without trying each one: the same file's bytes, memory-mapped, are an occupancy map (byte i
is 1 while slot i is held: set after its lock is taken, cleared before it is unlocked). An acquire looks for a 0
byte (``mmap.find``, from a per-object hint: the slot given back last, else the one after the slot taken last, so
the warm path locks and unlocks the same byte, one ``fcntl`` each) and locks it; a byte that lies (a race) only
costs a failed ``fcntl``. A holder that died leaves its bytes at 1: when the map shows nothing free, up to
:data:`SWEEP` bytes marked taken are checked with ``F_OFD_GETLK``, round-robin, and an unlocked one is taken. So a
throttle costs at most ``SWEEP`` system calls whatever the limit, and a dead holder's slots come back to the
acquires that find the map full, as soon as they need them (the first such acquire checks every slot of a limit
up to ``SWEEP``). Measured (README
"Concurrency across processes and API authentication").

The decisions (provisioned first, then reserved, then the unreserved pool, and the throttle reasons) are the
base class's; only the two on-demand counts move here. Provisioned leases stay counted in their process: a
provisioned environment belongs to one process's pool.

Capacity changes (PutFunctionConcurrency, provisioned environments becoming ready) change how many slots a new
acquire may try; leases on slots above a lowered capacity run to completion and are given back as usual (AWS
does not stop running invocations either).

The lock files are created ``0600`` in a ``0700`` directory under the state directory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import mmap
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path

from edge.invocation.execution.limiter import ConcurrencyLimiter, Lease

__all__ = ["SharedConcurrencyLimiter", "SlotFile", "make_limiter"]

log = logging.getLogger("edgelab.invocation.limiter")

# struct flock on Linux LP64 (x86_64, aarch64): short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid (0: required by OFD locks), padded to 32 bytes
_FLOCK = struct.Struct("@hhqqi4x")
_BUSY = (errno.EAGAIN, errno.EACCES)
MAX_SLOTS = 1 << 20  # slots per file (the settings cap an account limit at 1,000,000); the file is this long, sparse
SWEEP = 16  # slots marked taken checked for a dead holder per acquire that finds none free
_REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SlotFile:
    """Slots as one-byte OFD locks in one file, with an occupancy map in the same file's bytes (see the module
    docstring). Not thread-safe (one event loop)."""

    __slots__ = ("_cursor", "_fd", "_held", "_hint", "_lock_args", "_map", "_unlock_args", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held: set[int] = set()
        self._hint = 0
        self._cursor = 0  # where the next sweep for stale map bytes starts
        self._lock_args: list[bytes] = []  # packed struct flock per slot, built on first use
        self._unlock_args: list[bytes] = []
        try:
            fcntl.fcntl(self._fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0))
            if os.fstat(self._fd).st_size < MAX_SLOTS:
                os.ftruncate(self._fd, MAX_SLOTS)  # sparse; every process sizes it the same, never smaller
            self._map = mmap.mmap(self._fd, MAX_SLOTS)
        except OSError:
            os.close(self._fd)
            self._fd = -1
            raise

    def __repr__(self) -> str:
        return f"<SlotFile {self.path} held={sorted(self._held)}>"

    def _args(self, slot: int) -> tuple[bytes, bytes]:
        while len(self._lock_args) <= slot:
            i = len(self._lock_args)
            self._lock_args.append(_FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, i, 1, 0))
            self._unlock_args.append(_FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, i, 1, 0))
        return self._lock_args[slot], self._unlock_args[slot]

    def _lock(self, slot: int) -> bool:
        try:
            fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK,
                        self._lock_args[slot] if slot < len(self._lock_args) else self._args(slot)[0])
        except OSError as e:
            if e.errno not in _BUSY:
                raise
            return False
        self._map[slot] = 1
        self._held.add(slot)
        self._hint = slot + 1
        return True

    def take(self, limit: int) -> int | None:
        """Lock a free slot below ``limit`` and return it; None when every one is held (here or elsewhere).

        Candidates are the slots the map shows free (from the hint, then from 0); when there are none, up to
        :data:`SWEEP` slots the map shows taken are checked for a lock (a holder that died leaves its bytes set),
        round-robin: a throttle costs at most that many ``fcntl`` calls."""
        if limit <= 0:
            return None
        if self._fd < 0:
            raise RuntimeError(f"{self.path}: the concurrency limiter is closed")
        limit = min(limit, MAX_SLOTS)
        mm, held = self._map, self._held
        start = self._hint if self._hint < limit else 0
        for lo, hi in ((start, limit), (0, start)):
            slot = mm.find(b"\0", lo, hi)
            while slot >= 0:
                if slot not in held and self._lock(slot):
                    return slot
                slot = mm.find(b"\0", slot + 1, hi)
        return self._sweep(limit)

    def _sweep(self, limit: int) -> int | None:
        """Check up to SWEEP slots marked taken for a lock; a stale one (its holder died) is taken."""
        mm, held, fd = self._map, self._held, self._fd
        slot = self._cursor if self._cursor < limit else 0
        for _ in range(min(SWEEP, limit)):
            if slot not in held:
                got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK,
                                  self._lock_args[slot] if slot < len(self._lock_args) else self._args(slot)[0])
                if _FLOCK.unpack(got)[0] == fcntl.F_UNLCK:
                    mm[slot] = 0
                    if self._lock(slot):
                        self._cursor = slot + 1
                        return slot
            slot += 1
            if slot >= limit:
                slot = 0
        self._cursor = slot
        return None

    def give(self, slot: int) -> None:
        """Unlock a slot this object took (a slot it does not hold, or after close: nothing). The map byte is
        cleared first: nobody sees a free byte for a slot still locked for long, or a taken one for a free slot."""
        if slot in self._held:
            self._held.discard(slot)
            if self._fd >= 0:
                self._map[slot] = 0
                fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, self._unlock_args[slot])
            self._hint = slot

    def held(self) -> int:
        """Slots this object holds."""
        return len(self._held)

    def busy_elsewhere(self, limit: int) -> int:
        """How many slots below ``limit`` other open files hold now (introspection and tests: one fcntl per slot)."""
        if self._fd < 0:
            return 0
        n = 0
        for slot in range(min(limit, MAX_SLOTS)):
            if slot in self._held:
                continue
            got = fcntl.fcntl(self._fd, fcntl.F_OFD_GETLK, self._args(slot)[0])
            if _FLOCK.unpack(got)[0] != fcntl.F_UNLCK:
                n += 1
        return n

    def close(self) -> None:
        """Close the file: the kernel releases every slot still held through it (their map bytes are cleared
        first). Idempotent."""
        if self._fd >= 0:
            for slot in self._held:
                self._map[slot] = 0
            self._map.close()
            os.close(self._fd)
            self._fd = -1
        self._held.clear()


def _file_name(function: str) -> str:
    """A function's lock file name (its name when it is a plain Lambda name, else a digest of it)."""
    if _NAME_RE.fullmatch(function):
        return f"{function}.lock"
    return f"x-{hashlib.sha256(function.encode()).hexdigest()[:32]}.lock"


class SharedConcurrencyLimiter(ConcurrencyLimiter):
    """:class:`ConcurrencyLimiter` whose on-demand counts are shared, through lock files under
    ``<root>/<region>/``, by every limiter of that region on this host (see the module docstring)."""

    def __init__(self, root: Path, account_limit: int = 1000, reserved: Mapping[str, int] | None = None,
                 *, region: str = "us-east-1") -> None:
        if not _REGION_RE.fullmatch(region):
            raise ValueError(f"region {region!r} is not a region name (lowercase letters, digits and '-')")
        self.directory = Path(root) / region
        for d in (Path(root), self.directory, self.directory / "reserved"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)  # the mode applies to what is created here
        self._pool = SlotFile(self.directory / "unreserved.lock")
        self._files: dict[str, SlotFile] = {}
        super().__init__(account_limit, reserved)

    def __repr__(self) -> str:
        return f"<Shared{super().__repr__()[1:-1]} dir={self.directory}>"

    def _file(self, fn: str) -> SlotFile:
        f = self._files.get(fn)
        if f is None:
            f = self._files[fn] = SlotFile(self.directory / "reserved" / _file_name(fn))
        return f

    def _take_reserved(self, fn: str, limit: int) -> int | None:
        f = self._files.get(fn)
        return (f or self._file(fn)).take(limit)

    def _take_unreserved(self) -> int | None:
        return self._pool.take(self._capacity)

    def _give(self, lease: Lease) -> None:
        (self._files[lease.function] if lease.reserved else self._pool).give(lease.slot)

    def region_inflight(self, function: str | None = None) -> int:
        """On-demand executions in flight in the region, every process included: ``function``'s reserved ones,
        or (None) the unreserved pool's (introspection and tests)."""
        if function is None:
            return self._pool.held() + self._pool.busy_elsewhere(max(self._capacity, self._pool.held()))
        f = self._file(function)
        return f.held() + f.busy_elsewhere(max(self.reserved.get(function, 0), f.held()))

    def close(self) -> None:
        self._pool.close()
        for f in self._files.values():
            f.close()


def make_limiter(root: Path | None, region: str, account_limit: int,
                 reserved: Mapping[str, int] | None = None) -> ConcurrencyLimiter:
    """The limiter of ``region``: shared through ``root`` when given (a stack), else this process's own (a bare
    executor). Where OFD locks are not available (a kernel older than 3.15, or a file system without locks),
    the process's own limiter, with a warning naming the cause."""
    if root is None:
        return ConcurrencyLimiter(account_limit, reserved)
    try:
        return SharedConcurrencyLimiter(root, account_limit, reserved, region=region)
    except OSError as e:
        log.warning("concurrency of %s is counted per process (not shared with the stack's other processes): "
                    "open-file-description locks under %s are not available (%s)", region, root, e)
        return ConcurrencyLimiter(account_limit, reserved)
