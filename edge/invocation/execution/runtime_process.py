"""A runtime process started by ``exec`` (a Node.js shim, a custom runtime's ``bootstrap``), with the same
guarantees as a forked Python worker. Two ways to start one, same interface (:class:`RuntimeChild`):

- :class:`ZygoteProcess` (what the executor uses): the zygote forks and execs it (``exec`` message of
  :mod:`edge.invocation.runtime.zygote`), reaps it and reports its exit; the zygote arms the parent-death signal
  before ``exec``, and dies with the core. Measured against the direct start below (issue 12 phase 2): the
  runtime inherits the zygote's small peak RSS instead of the core's, so the Node shim reads its peak memory with
  ``getrusage`` (~0.8 us) instead of ``/proc/self/status`` (~8 us) on every invocation, and no ``setpriv`` exec
  is needed (nor installed: without it a direct start has no parent-death signal);
- :class:`ChildProcess`: the core itself starts it (asyncio's ``subprocess_exec``, ``start_new_session``), for
  code that runs a runtime without an executor (the shim's tests, ``python -m bench node``); ``setpriv
  --pdeathsig KILL`` (util-linux) arms the parent-death signal before ``exec`` when it is installed, and the
  runtime checks ``EDGELAB_PARENT_PID`` against its parent at start (the window between fork and prctl).

Either way:

- its own process group: :meth:`RuntimeChild.kill` SIGKILLs the whole group, so everything the function started
  dies with its environment (a function that calls ``setsid`` itself escapes, as it escapes the Python worker's
  ``killpg``);
- stdout and stderr are one memfd (``O_APPEND``: the runtime may truncate it after reading; writes then start at 0
  again), read back by the core after a crash (:meth:`output`) or drained per invocation (:meth:`take_output`);
  the first 1 MiB of an invocation's output is kept, the rest counted and dropped. A runtime that floods its
  output during a long invocation holds at most ~2 MiB of host memory in the memfd: the memory watch's samples
  call :meth:`bound_output`, which punches the bytes past the kept head out of the memfd (``fallocate``
  ``PUNCH_HOLE | KEEP_SIZE``: the pages are freed, the size still counts them, so whoever drains the output, the
  core or the Node.js shim, keeps the head and counts the rest exactly). Without it, one second of
  ``for (;;) process.stdout.write(...)`` put ~500 MB of RAM in the memfd. The size still grows: output past
  the /tmp file-size limit within one invocation fails with EFBIG (AWS has no such limit);
- it is reaped (by the zygote, or by the event loop's child watcher): :attr:`status` is the raw wait status (what
  :func:`edge.invocation.execution.environment.describe_exit` words as AWS does), ``exited`` is set;
- memory: :meth:`rss_kb` samples the resident set (``/proc/<pid>/statm``); :class:`MemoryWatch` turns sampling on
  for invocations older than 50 ms (every 10 ms, as the Python worker's watchdog) and SIGKILLs the group past the
  limit. Node.js cannot run under ``RLIMIT_AS`` (V8 reserves its code range at start and fails below ~1 GiB), so
  unlike the Python worker there is no address-space cap; V8's heap flags bound the JavaScript heap.
- /tmp: ``RLIMIT_FSIZE`` caps one file at the ephemeral storage size (set with ``prlimit`` on the running process
  when it is assigned to a function, :meth:`set_file_size_limit`); the total is checked after each invocation by
  the runtime (Node shim) or the core (custom runtimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import resource
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Sequence

from edge.invocation.execution.zygote_client import ZygoteClient

OUTPUT_LIMIT = 1 << 20
SPILL_AT = 2 * OUTPUT_LIMIT  # bound_output frees the memfd's pages past OUTPUT_LIMIT beyond this size
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 1, 2  # linux/falloc.h
_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
_fallocate.restype = ctypes.c_int
WATCH_AFTER_S = 0.05
SAMPLE_EVERY_S = 0.01
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_SETPRIV = shutil.which("setpriv")


def _new_memfd(name: str) -> int:
    memfd = os.memfd_create(f"lambda-{name}", os.MFD_CLOEXEC)
    fcntl.fcntl(memfd, fcntl.F_SETFL, fcntl.fcntl(memfd, fcntl.F_GETFL) | os.O_APPEND)
    return memfd


class RuntimeChild:
    """One exec'd runtime process (see the module docstring): exit, signals, output, resources."""

    def __init__(self, memfd: int) -> None:
        self.memfd = memfd
        self.pid = 0
        self.status: int | None = None  # raw wait status once reaped
        self.exit_at: float | None = None  # CLOCK_MONOTONIC time it was reaped
        self.exited = asyncio.Event()
        self._on_exit_cbs: list[Callable[[], None]] = []
        self._punched_to = OUTPUT_LIMIT  # the memfd's pages from OUTPUT_LIMIT up to here are freed (bound_output)
        self.cg_memory_stat: str | None = None  # the environment's cgroup memory.stat, when it has one

    def _exited(self, status: int | None, at: float | None) -> None:
        if self.exited.is_set():
            return
        self.status = status
        self.exit_at = at if at is not None else time.monotonic()
        self.exited.set()
        for cb in self._on_exit_cbs:
            cb()

    def on_exit(self, cb: Callable[[], None]) -> None:
        if self.exited.is_set():
            cb()
        else:
            self._on_exit_cbs.append(cb)

    @property
    def alive(self) -> bool:
        return not self.exited.is_set()

    def _signal(self, sig: int) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL the process group (never after the reap: the pid could have been recycled)."""
        if not self.exited.is_set() and self.pid:
            self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        if not self.exited.is_set() and self.pid:
            self._signal(signal.SIGTERM)

    async def wait(self, timeout_s: float) -> int | None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.exited.wait()
        except TimeoutError:
            pass
        return self.status

    async def stop(self, grace_s: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (AWS's shutdown budget), then close the memfd."""
        if grace_s > 0:
            self.terminate()
            await self.wait(grace_s)
        self.kill()
        await self.wait(5.0)
        self.close()

    def close(self) -> None:
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1


    # -- output and resources -------------------------------------------------------------------------------
    def output(self) -> bytes:
        """Everything in the memfd (at most 1 MiB), without consuming it."""
        if self.memfd < 0:
            return b""
        try:
            size = os.fstat(self.memfd).st_size
            return os.pread(self.memfd, min(size, OUTPUT_LIMIT), 0) if size else b""
        except OSError:
            return b""

    def take_output(self) -> bytes:
        """Read and truncate (the runtime's next write lands at offset 0: O_APPEND)."""
        data = self.output()
        self._punched_to = OUTPUT_LIMIT
        if data:
            size = os.fstat(self.memfd).st_size
            os.ftruncate(self.memfd, 0)
            if size > OUTPUT_LIMIT:
                data += f"\n[edgelab] {size - OUTPUT_LIMIT} bytes of function output truncated\n".encode()
        return data

    def bound_output(self) -> None:
        """Free the memfd's pages past the kept head while an invocation runs, once it holds more than
        :data:`SPILL_AT` (see the module docstring). Called from the memory watch's samples (every 10 ms of a
        long invocation): one ``fstat`` when there is nothing to free. The drained output (head, size, count of
        truncated bytes) is exactly what it would have been."""
        if self.memfd < 0:
            return
        try:
            size = os.fstat(self.memfd).st_size
        except OSError:
            return
        if size < self._punched_to:  # drained meanwhile (the Node.js shim truncates its own output)
            self._punched_to = OUTPUT_LIMIT
        if size - self._punched_to <= SPILL_AT - OUTPUT_LIMIT:
            return
        end = size & ~0xFFFF  # whole pages, below the writer's current end
        if _fallocate(self.memfd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, self._punched_to,
                      end - self._punched_to) == 0:
            self._punched_to = end

    def rss_kb(self) -> int:
        """The environment's resident memory: its cgroup's anonymous memory (every process it started) when it
        has a cgroup, or the runtime process's RSS, whichever is larger."""
        own = 0
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                own = int(f.read().split()[1]) * _PAGE_KB
        except (OSError, ValueError, IndexError):
            pass
        if self.cg_memory_stat is not None:
            try:
                with open(self.cg_memory_stat, "rb") as f:
                    data = f.read()
                i = data.find(b"\nrss ")
                if i >= 0:
                    return max(own, int(data[i + 5:data.find(b"\n", i + 5)]) // 1024)
            except (OSError, ValueError):
                pass
        return own

    def peak_rss_kb(self) -> int:
        """VmHWM (peak resident set) of the process, 0 once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def set_file_size_limit(self, limit_bytes: int) -> None:
        """RLIMIT_FSIZE of the running process (the /tmp quota for one file); children inherit it."""
        if limit_bytes > 0 and not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):  # it already exited (its exit is being reported)
                resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))


class ZygoteProcess(RuntimeChild):
    """A runtime process forked and exec'd by the zygote (see the module docstring)."""

    def __init__(self, memfd: int, zygote: ZygoteClient, key: str) -> None:
        super().__init__(memfd)
        self._zygote = zygote
        self.key = key  # the zygote's name for it

    @classmethod
    async def start(cls, zygote: ZygoteClient, argv: Sequence[str], *, env: dict[str, str], cwd: str,
                    channel_fd: int | None = None, name: str = "runtime", sb: dict | None = None) -> ZygoteProcess:
        """Start ``argv`` through the zygote; ``channel_fd`` (if given) is fd 3 (``zygote.CHANNEL_FD``) in the
        runtime. Raises ZygoteError if the zygote cannot fork."""
        proc = cls(_new_memfd(name), zygote, f"{name}-{uuid.uuid4().hex}")
        try:
            proc.pid = await zygote.exec(proc.key, list(argv), env, cwd, proc.memfd, channel_fd, proc._exited, sb)
            cg = zygote.isolation.get("cg")
            if sb is not None and cg:  # the memory watch samples the whole environment (every process it started)
                proc.cg_memory_stat = os.path.join(cg["memory"], proc.key, "memory.stat")
        except BaseException:
            proc.close()
            raise
        return proc

    def _signal(self, sig: int) -> None:
        self._zygote.kill(self.key, sig)


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, proc: ChildProcess) -> None:
        self.proc = proc

    def process_exited(self) -> None:
        self.proc._on_exit()


class ChildProcess(RuntimeChild):
    """A runtime process the core starts itself (see the module docstring). Create with :meth:`start`."""

    def __init__(self, memfd: int) -> None:
        super().__init__(memfd)
        self._transport: asyncio.SubprocessTransport | None = None

    @classmethod
    async def start(cls, argv: Sequence[str], *, env: dict[str, str], cwd: str, pass_fds: Sequence[int] = (),
                    name: str = "runtime", tell_parent: bool = False) -> ChildProcess:
        memfd = _new_memfd(name)
        proc = cls(memfd)
        if tell_parent:  # a runtime of ours checks it at start; a user's bootstrap never sees it
            env = dict(env, EDGELAB_PARENT_PID=str(os.getpid()))
        full = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: _Protocol(proc), *full, stdin=asyncio.subprocess.DEVNULL, stdout=memfd, stderr=memfd,
                pass_fds=tuple(pass_fds), env=env, cwd=cwd, start_new_session=True)
        except BaseException:
            os.close(memfd)
            raise
        proc._transport = transport
        proc.pid = transport.get_pid()
        return proc

    def _on_exit(self) -> None:
        rc = self._transport.get_returncode() if self._transport is not None else None
        self._exited(None if rc is None else ((-rc) if rc < 0 else (rc << 8)), None)  # back to a wait status

    def _signal(self, sig: int) -> None:
        for fn in ((os.killpg, os.kill) if sig == signal.SIGKILL else (os.killpg,)):
            with contextlib.suppress(OSError):
                fn(self.pid, sig)

    def close(self) -> None:
        if self._transport is not None and self.exited.is_set():
            self._transport.close()
        super().close()

class MemoryWatch:
    """Sample a process's RSS while an invocation runs longer than WATCH_AFTER_S; past ``limit_kb`` SIGKILL its
    group and remember the RSS seen (the caller then reports ``Runtime.OutOfMemory``, "signal: killed"). Timer
    callbacks on the event loop: one ``/proc`` read (~5 us) per 10 ms of a long invocation, nothing for short
    ones (the first timer is cancelled when the invocation ends before 50 ms)."""

    __slots__ = ("_loop", "_timer", "killed_rss_kb", "limit_kb", "proc")

    def __init__(self, proc: RuntimeChild, limit_kb: int) -> None:
        self.proc = proc
        self.limit_kb = limit_kb
        self.killed_rss_kb: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def arm(self) -> None:
        self.disarm()
        self._timer = self._loop.call_later(WATCH_AFTER_S, self._sample)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        self._timer = None
        if not self.proc.alive:
            return
        self.proc.bound_output()
        rss = self.proc.rss_kb()
        if rss > self.limit_kb:
            self.killed_rss_kb = rss
            self.proc.kill()
            return
        self._timer = self._loop.call_later(SAMPLE_EVERY_S, self._sample)
