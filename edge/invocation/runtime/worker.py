"""What a forked execution-environment process runs: process setup, Init (handler import), the invoke loop.

Contract (see :mod:`.protocol` for frames):
- ``child_main`` never returns; it ends the process with ``os._exit`` so nothing of the zygote (atexit hooks,
  finally blocks) runs in the child.
- Init imports the handler module exactly once; on failure one ``K_INIT_ERROR`` frame is sent and the process
  exits with status 1 (awslambdaric behaviour).
- One invocation at a time: read ``K_INVOKE``, run ``handler(event, context)``, answer ``K_RESULT``/``K_ERROR``.
- Memory: the peak RSS (``ru_maxrss``) is checked after every invocation, and a watchdog thread samples
  ``/proc/self/statm`` every 10 ms once an invocation has run for ``WATCH_AFTER_S`` (short invocations cost the
  thread no wake-up: it sleeps until the running invocation would reach that age); above ``memory_mb`` the
  worker sends ``K_OOM`` and kills its process group (SIGKILL). ``RLIMIT_AS`` is a safety net; a
  ``MemoryError`` is treated the same way.
- Whole environment: in a sandbox with a cgroup (:mod:`.sandbox`) the watchdog samples the cgroup's anonymous
  memory instead (every process the function started counts) and the kill takes the cgroup's processes too.
- /tmp quota: with a tmpfs /tmp (:mod:`.sandbox`) the file system itself ends at the quota (``ENOSPC``) and
  nothing is checked here. Without it: ``RLIMIT_FSIZE`` caps any single file (writes fail with EFBIG), and the usage of the environment's
  temp dir is checked after each invocation (:class:`.tmpwatch.TmpWatch`: rescanned when inotify saw a change,
  at least once a second); above the quota the invocation fails and the environment is reset with its temp
  dir wiped.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import importlib
import io
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from edge.invocation.runtime import context as ctxmod
from edge.invocation.runtime import faults, protocol, sandbox
from edge.invocation.runtime.logformat import (
    encode_record,
    end_line,
    max_memory_used_mb,
    output_lines,
    report_line,
    start_line,
)
from edge.invocation.runtime.marshal import encode_result, load_event
from edge.invocation.runtime.tmpwatch import TmpWatch

RESPONSE_LIMIT = 6_291_556
OUTPUT_LIMIT = 1 << 20  # function output kept per invocation; the rest is dropped with a marker line
_FALLOC_PUNCH_KEEP = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h)
PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8
JOIN_MAX = 65_536  # frames up to this size are joined and sent with one send(); bigger ones use sendmsg
WATCH_AFTER_S = 0.05  # the memory watchdog samples invocations older than this (younger: ru_maxrss afterwards)
SAMPLE_EVERY_S = 0.01
PARK_AFTER_S = 1.0  # the watchdog parks (no wake-ups at all) after this long without an invocation
_HIDDEN_PACKAGES = ("edge", "orjson")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def set_pdeathsig(libc: ctypes.CDLL, expected_parent: int) -> None:
    """Die with SIGKILL when the parent dies; exit at once if it already did (race with fork)."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != expected_parent:
        os._exit(70)


def _setup_process(libc: ctypes.CDLL, log_fd: int, cfg: dict) -> None:
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-quota write fails with EFBIG instead of killing
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        raw = io.FileIO(fd, "w", closefd=False)
        stream = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace",
                                  line_buffering=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the process
    libc.mallopt(M_ARENA_MAX, 2)  # keep per-thread malloc arenas from eating the RLIMIT_AS budget
    memory = int(cfg["memory_mb"]) * 1024 * 1024
    with open("/proc/self/statm", "rb") as f:
        vsz = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vsz + max(3 * memory, memory + (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    fsize = int(cfg["tmp_quota_mb"]) * 1024 * 1024
    if fsize:  # 0: a tmpfs /tmp ends at the quota by itself, and stdout never hits a file-size limit
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    os.environ.clear()
    os.environ.update(cfg["env"])
    os.chdir(cfg["task_root"])
    base = [p for p in sys.path if p and "-packages" not in p and p != cfg["project_root"]]
    extra = [p for p in cfg["paths"] if os.path.isdir(p)]
    sys.path[:] = [cfg["task_root"], *extra, *base]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    tempfile.tempdir = cfg["tmp"]
    # Hide the runtime's own third-party and project modules from user code (its functions keep references).
    for mod in [m for m in sys.modules if m.split(".", 1)[0] in _HIDDEN_PACKAGES]:
        del sys.modules[mod]


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    """awslambdaric's ``_get_handler``: resolve ``module.function`` or raise FaultException / user errors."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise faults.FaultException(faults.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {e}") from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise faults.FaultException(faults.BUILT_IN_MODULE_CONFLICT,
                                    f"Cannot use built-in module {modname} as a handler module")
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise faults.FaultException(faults.IMPORT_MODULE_ERROR,
                                    f"Unable to import module '{modname}': {e}") from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}\n']
        raise faults.FaultException(faults.USER_CODE_SYNTAX_ERROR,
                                    f"Syntax error in module '{modname}': {e}", trace) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise faults.FaultException(faults.HANDLER_NOT_FOUND,
                                    f"Handler '{fname}' missing on module '{modname}'") from None


class Worker:
    """The invoke loop of one execution environment (one instance per process)."""

    def __init__(self, sock: socket.socket, cfg: dict, handler: Callable[[Any, Any], Any],
                 holder: ctxmod.RequestIdHolder, libc: ctypes.CDLL, cg_stat_fd: int | None = None) -> None:
        self.sock = sock
        self.handler = handler
        self.holder = holder
        self.static = ctxmod.StaticFields(cfg["env"])
        self.memory_mb = int(cfg["memory_mb"])
        self.limit_kb = self.memory_mb * 1024
        self.tmp = cfg["tmp"]
        self.tmp_quota = int(cfg["tmp_quota_mb"]) * 1024 * 1024
        self.tmp_watch = TmpWatch(self.tmp, libc) if self.tmp_quota else None
        self.libc = libc
        # Whether a variable is set, asked of the C environment, which os.environ writes through (putenv/unsetenv):
        # ``name in os.environ`` raises and catches a KeyError inside os.environ when it is absent (every invocation
        # without a trace header asks): ~1.8 us against ~0.4 us for getenv(3) (timeit; ~4k instructions of a warm
        # invocation's worker side, callgrind, python -m bench core --worker)
        self._getenv = libc.getenv
        self._getenv.restype = ctypes.c_void_p
        self.cg_stat_fd = cg_stat_fd  # the environment's cgroup memory.stat: the watchdog's whole-tree figure
        self.punched_to = OUTPUT_LIMIT  # the output memfd's pages from OUTPUT_LIMIT up to here are freed
        self.send_lock = threading.Lock()
        self.busy = False
        self.started = time.perf_counter()  # when the current (or last) invocation started
        self.parked = False
        self.wake = threading.Event()
        # complete frames not served yet (the core sends one at a time); a deque: a list grown to one item and
        # emptied again reallocates its storage every time
        self._frames: collections.deque[protocol.Frame] = collections.deque()
        self._reader = protocol.FrameReader(self._frames.append)
        # Wait for the next invocation in poll(POLLIN), not in a blocking recv(): a unix socket has one wait
        # queue for readers and writers, and the core reading our last result frees our send buffer, which
        # wakes any sleeper on it ("write space"). A recv() sleeper takes that wake-up (a needless context
        # switch and cross-CPU wake per invocation, on both sides); a poll sleeper filters it by event mask.
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        self._wait_readable = poller.poll

    # -- I/O ---------------------------------------------------------------------------------------------
    def send(self, meta: dict[str, object], body: bytes = b"", log: bytes = b"") -> None:
        """One frame to the core (the invoke loop's results, the watchdog's K_OOM: one at a time, under the lock)."""
        parts = protocol.encode(meta, body, log)
        lock = self.send_lock
        lock.acquire()  # (not ``with``: ~1k instructions more per frame, callgrind)
        try:
            if len(body) + len(log) <= JOIN_MAX:  # copying a small frame once is cheaper than sendmsg's iovec setup
                self.sock.sendall(b"".join(parts))
            else:
                sent = self.sock.sendmsg(parts)
                if sent < sum(map(len, parts)):  # partial write of a large frame: push the rest
                    self.sock.sendall(b"".join(parts)[sent:])
        finally:
            lock.release()

    def recv(self) -> tuple[dict, bytes] | None:
        """The next frame's (meta, body); None when the core closed the channel."""
        reader = self._reader
        frames = self._frames
        while not frames:
            if reader.buffer:  # the rest of a frame: read all of it at once if it is big
                chunk = self.sock.recv(max(65_536, reader.missing()))
            else:
                self._wait_readable()
                # 64 KiB stays below malloc's mmap threshold: a bigger buffer costs mmap+mremap+munmap per call
                chunk = self.sock.recv(65_536)
            if not chunk:
                return None
            frame = reader.whole(chunk)
            if frame is not None:
                return frame[0], frame[1]
            reader.reassemble(chunk)
        meta, body, _ = frames.popleft()
        return meta, body

    @staticmethod
    def drain_output() -> bytes:
        """Everything written to stdout/stderr (fd 1/2, a memfd shared with the core) since the last call."""
        sys.stdout.flush()
        sys.stderr.flush()
        pos = os.lseek(1, 0, os.SEEK_CUR)
        if not pos:
            return b""
        data = os.pread(1, min(pos, OUTPUT_LIMIT), 0)
        os.ftruncate(1, 0)
        os.lseek(1, 0, os.SEEK_SET)
        if pos > OUTPUT_LIMIT:
            data += f"\n[edgelab] {pos - OUTPUT_LIMIT} bytes of function output truncated\n".encode()
        return data

    def bound_output(self) -> None:
        """From the watchdog, while an invocation runs: free the output memfd's pages past the kept head
        (``fallocate`` ``PUNCH_HOLE | KEEP_SIZE``) once more than 1 MiB beyond it are resident, so a function
        flooding stdout holds ~2 MiB of host memory, not up to its /tmp file-size limit; the size (the file
        offset) still counts every byte, so :meth:`drain_output` keeps the same head and count. The drain may run
        meanwhile (the invocation returned): a stale offset read then punches past the end, which frees nothing."""
        pos = os.lseek(1, 0, os.SEEK_CUR)
        if pos < self.punched_to:  # drained since
            self.punched_to = OUTPUT_LIMIT
        if pos - self.punched_to > OUTPUT_LIMIT:
            end = pos & ~0xFFFF
            if self.libc.fallocate(1, _FALLOC_PUNCH_KEEP, ctypes.c_int64(self.punched_to),
                                   ctypes.c_int64(end - self.punched_to)) == 0:
                self.punched_to = end

    # -- memory ------------------------------------------------------------------------------------------
    def die_oom(self, rss_kb: int) -> NoReturn:
        sys.stdout.flush()
        try:
            self.send({"t": protocol.K_OOM, "rss": rss_kb})
        finally:
            os.killpg(0, signal.SIGKILL)
        os._exit(137)

    def watchdog(self) -> None:
        """Sample RSS every 10 ms while an invocation older than WATCH_AFTER_S runs; otherwise sleep until the
        running invocation would reach that age (at most WATCH_AFTER_S); park after PARK_AFTER_S without
        invocations (no idle wake-ups). Reads of ``busy``/``started`` race with the invoke loop harmlessly: the
        worst case is one needless sample or one sample 10 ms late."""
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        clock = time.perf_counter
        while True:
            age = clock() - self.started
            if self.busy:
                if age >= WATCH_AFTER_S:
                    rss_kb = int(os.pread(fd, 128, 0).split()[1]) * page_kb
                    if self.cg_stat_fd is not None:
                        rss_kb = max(rss_kb, sandbox.cgroup_rss_kb(self.cg_stat_fd))
                    if rss_kb > self.limit_kb:
                        self.die_oom(rss_kb)
                    self.bound_output()
                    time.sleep(SAMPLE_EVERY_S)
                else:
                    time.sleep(WATCH_AFTER_S - age)
            elif age > PARK_AFTER_S:
                self.parked = True
                if not self.busy:  # re-checked after publishing `parked`: an invocation that just started
                    self.wake.wait()  # either saw `parked` (and sets `wake`) or is seen busy here
                self.wake.clear()
            else:
                time.sleep(WATCH_AFTER_S)

    # -- invoke ------------------------------------------------------------------------------------------
    def serve(self) -> int:
        threading.Thread(target=self.watchdog, name="lambda-memory-watchdog", daemon=True).start()
        while True:
            frame = self.recv()
            if frame is None:
                return 0  # the core closed the channel: shut down
            self.invoke(*frame)

    def invoke(self, meta: dict, body: bytes) -> None:
        rid = meta["id"]
        self.holder.value = rid
        self.started = t0 = time.perf_counter()
        self.busy = True
        if self.parked:
            self.parked = False
            self.wake.set()
        kind, out, etype, reset = self._run(meta, body, rid)
        duration = (time.perf_counter() - t0) * 1000.0
        self.busy = False
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if rss_kb > self.limit_kb:
            self.die_oom(rss_kb)
        if len(out) > RESPONSE_LIMIT and kind == protocol.K_RESULT:
            kind, etype, reset = protocol.K_ERROR, "Function.ResponseSizeTooLarge", True
            out = protocol.dumps({"errorMessage": "Response payload size exceeded maximum allowed payload size "
                                  f"({RESPONSE_LIMIT} bytes).", "errorType": etype})
        if self.tmp_watch is not None:
            usage = self.tmp_watch.usage()
            if usage > self.tmp_quota:
                kind, etype, reset = protocol.K_ERROR, "Runtime.EphemeralStorageExceeded", True
                out = protocol.dumps({"errorType": etype, "errorMessage": (
                    f"RequestId: {rid} Error: /tmp usage {usage / 1048576:.1f} MB exceeds the ephemeral storage "
                    f"size of {self.tmp_quota // 1048576} MB; the environment was reset and /tmp wiped")})
        log = self.drain_output()
        if meta.get("lg"):  # the core asked for the invocation's log record instead of the raw output
            log = self.log_record(meta, rid, log, duration, rss_kb)
        if kind == protocol.K_RESULT:
            meta = {"t": kind, "d": duration, "rss": rss_kb}
        else:
            meta = {"t": kind, "d": duration, "rss": rss_kb, "et": etype, "reset": reset}
        self.send(meta, out, log)

    def log_record(self, meta: dict, rid: str, output: bytes, duration_ms: float, rss_kb: int) -> bytes:
        """This invocation's log events as one record (see :mod:`.logformat`): the lines the core passed
        (``pre``: INIT_START and the Init output of a cold start), START, the output, END and REPORT (with
        ``init``, the Init Duration the core measured, on a cold start)."""
        lines = meta.get("pre") or []
        lines.append(start_line(rid, self.static.function_version))
        if output:
            lines += output_lines(output)
        lines.append(end_line(rid))
        lines.append(report_line(rid, duration_ms, self.memory_mb, max_memory_used_mb(self.memory_mb, rss_kb),
                                 meta.get("init")))
        return encode_record(int(time.time() * 1000), rid, lines)

    def _run(self, meta: dict, body: bytes, rid: str) -> tuple[str, bytes, str | None, bool]:
        """Run the handler; returns (frame kind, payload, errorType, reset)."""
        ctx = ctxmod.LambdaContext(self.static, rid, meta["dl"], meta["arn"], meta.get("cc"), meta.get("fn"))
        trace = meta.get("tr")  # the invocation's X-Ray trace header, as the runtime interface client sets it
        if trace is not None:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        elif self._getenv(b"_X_AMZN_TRACE_ID") is not None:  # set by a previous invocation: unset it
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            try:
                event = load_event(body) if body else {}
            except ValueError as e:
                raise faults.FaultException(faults.UNMARSHAL_ERROR, f"Unable to unmarshal input: {e}") from None
            result = self.handler(event, ctx)
            try:
                out = b"null" if result is None else encode_result(result).encode("utf-8", "surrogatepass")
            except Exception as e:  # any marshalling failure is a MarshalError (awslambdaric)
                raise faults.FaultException(faults.MARSHAL_ERROR, f"Unable to marshal response: {e}") from None
            return protocol.K_RESULT, out, None, False
        except MemoryError:
            self.die_oom(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        except SystemExit as e:
            _exit_like_python(e)
        except Exception as e:  # every handler exception becomes an error record
            record = faults.from_exception(e, rid)
            sys.stdout.write(faults.error_log_line(record))
            return protocol.K_ERROR, protocol.dumps(record), str(record["errorType"]), False
        except BaseException:  # KeyboardInterrupt & co. kill the runtime, as they would kill awslambdaric
            traceback.print_exc()
            _flush_and_exit(1)


def _flush_and_exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the process is going away; output is best effort
            stream.flush()
    os._exit(code)


def _exit_like_python(e: SystemExit) -> NoReturn:
    """What the interpreter does with an uncaught SystemExit: None -> 0, int -> itself, other -> print, 1."""
    code = e.code
    if code is None:
        _flush_and_exit(0)
    if isinstance(code, int):
        _flush_and_exit(code & 0xFF)
    sys.stderr.write(f"{code}\n")
    _flush_and_exit(1)


def child_main(sock_fd: int, log_fd: int, cfg: dict, zygote_pid: int, libc: ctypes.CDLL,
               sb: dict | None = None) -> NoReturn:
    """Entry point of a freshly forked environment process (called by the zygote in the child): its sandbox
    (:func:`.sandbox.enter`, as root), then the parent-death signal (a change of user clears it), then the rest."""
    cg_stat_fd = None
    try:
        sandbox.enter(libc, sb)
        if sb:
            cg_stat_fd = sandbox.memory_stat_fd(sb)
        set_pdeathsig(libc, zygote_pid)
        os.setpgid(0, 0)
        _setup_process(libc, log_fd, cfg)
        sock = socket.socket(fileno=sock_fd)
        sock.setblocking(True)
    except BaseException:  # nothing can be reported yet; the core sees exit status 70
        traceback.print_exc()
        _flush_and_exit(70)
    holder = ctxmod.RequestIdHolder()
    ctxmod.install_logging(holder)
    try:
        handler = load_handler(cfg["handler"])
    except SystemExit as e:
        _exit_like_python(e)
    except BaseException as e:  # every Init failure is reported, then the process exits
        record = faults.from_exception(e, "") if isinstance(e, Exception) else faults.make_error(
            str(e), type(e).__name__, None, "")
        sys.stdout.write(faults.error_log_line(record))
        log = Worker.drain_output()
        m = {"t": protocol.K_INIT_ERROR, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        try:
            sock.sendall(b"".join(protocol.encode(m, protocol.dumps(record), log)))
        finally:
            os._exit(1)
    worker = Worker(sock, cfg, handler, holder, libc, cg_stat_fd)
    log = worker.drain_output()
    worker.send({"t": protocol.K_READY, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, b"", log)
    try:
        code = worker.serve()
    except SystemExit as e:
        _exit_like_python(e)
    except BaseException:  # channel failure: nothing left to serve
        traceback.print_exc()
        _flush_and_exit(1)
    _flush_and_exit(code)
