"""The fork server: one per Executor, started with ``python -m edge.invocation.runtime.zygote CTRL_FD CORE_PID``.

It pre-imports the worker runtime and heavy stdlib modules once, freezes the GC generations (so children do not
dirty the shared pages), then serves control messages (see :mod:`.protocol`):

- ``spawn``: receive ``[worker_socket, log_memfd]`` with the message, fork; the child runs
  :func:`.worker.child_main`; the parent closes its copies and answers ``spawned`` with the pid.
- ``exec``: receive ``[log_memfd]`` or ``[log_memfd, channel]``, fork; the child (:func:`exec_child`) arms the
  parent-death signal, makes its own process group, puts the memfd on stdout/stderr and the channel (if any) on
  fd 3, then calls ``execve`` on ``argv`` with exactly ``envp`` in ``cwd`` (a Node.js shim, a custom runtime's
  ``bootstrap``). Same ``spawned``/``exit`` reports as ``spawn``. Forking this small process rather than the core
  keeps the runtime's inherited peak RSS small and needs no ``setpriv`` for the parent-death signal.
- ``kill``: signal the environment's process group (SIGKILL unless ``sig`` says otherwise; only while the child
  is not yet reaped, so a recycled pid is never hit).
- SIGCHLD: kill the process group of every exited child, reap it with ``waitpid`` and report ``exit`` with the
  raw wait status (see :meth:`Zygote.reap`).
- EOF on the control socket (the core closed it or died): SIGKILL every child, reap them, exit.

The zygote dies with the core (PR_SET_PDEATHSIG), and each child dies with the zygote.

Isolation (``argv[3]``, JSON from :mod:`edge.invocation.execution.isolation`): the zygote probes what the kernel
allows (a mount namespace in a forked child), says so in ``hello`` (``iso``), and puts every child into its
sandbox before any function code runs (:mod:`.sandbox`): its own uid (``uid_base`` + a counter), its own cgroup
(killed whole when the environment goes: a ``setsid`` daemon dies with it), its mount namespace. The zygote is
the child subreaper of everything its children start, so orphans are reaped here, never by the host's init.
- ``attach``: bind a pre-started (Node.js) environment's function paths and /tmp into its mount namespace, in a
  forked helper (:func:`.sandbox.attach`); answered with ``attached`` (``error`` when it failed).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import select
import signal
import socket
import sys
import time
from typing import NamedTuple, NoReturn

from edge.invocation.runtime import protocol, sandbox, worker

# Modules handlers commonly import: importing them here makes them free in every child (shared pages).
_PRELOAD = ("base64", "hashlib", "datetime", "uuid", "urllib.parse", "re", "random", "collections",
            "dataclasses", "typing", "email.utils", "http.client", "zlib", "copy", "functools", "itertools")


PR_SET_CHILD_SUBREAPER = 36


class Zygote:
    def __init__(self, ctrl: socket.socket, libc: ctypes.CDLL, iso: dict | None = None) -> None:
        self.ctrl = ctrl
        self.libc = libc
        self.iso = iso or {}
        self.children: dict[int, str] = {}  # pid -> env id (only children not yet reaped)
        self.by_env: dict[str, int] = {}
        self.sandboxes: dict[str, dict] = {}  # env id -> its sandbox (until its cgroup is gone)
        self.cg_pending: list[dict] = []  # cgroups whose processes were still exiting
        self.next_uid = 0
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.spare: _Spare | None = None  # a child forked ahead, waiting for its environment (see spawn)
        self.spare_due: float | None = None  # when to fork the next one (CLOCK_MONOTONIC; see SPARE_AFTER_S)
        self.spares_made = 0
        self.iso_roots: list[str] | None = None

    def send(self, msg: dict) -> None:
        with contextlib.suppress(OSError):  # the core is gone; EOF handling will shut us down
            self.ctrl.send(protocol.dumps(msg))

    def run(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        poller = select.poll()
        poller.register(self.ctrl.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        self.send({"t": "hello", "pid": os.getpid(), "iso": self.iso})
        self._new_spare()
        while True:
            due = self.spare_due
            if due is not None and time.monotonic() >= due:
                self.spare_due = due = None
                self._new_spare()
            try:
                events = poller.poll(None if due is None else max(0.0, (due - time.monotonic()) * 1000.0))
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == self.wake_r:
                    self._drain_wakeups()
                    self.reap(block=False)
                elif not self._on_control():
                    self.shutdown()
                    return

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _on_control(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self.ctrl, protocol.CONTROL_MAX, 4)
        except OSError:
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        msg = protocol.loads(data)
        if msg["t"] == "spawn":
            self.spawn(msg["env"], msg["cfg"], fds)
        elif msg["t"] == "exec":
            self.spawn(msg["env"], msg, fds, exec_=True)
        elif msg["t"] == "attach":
            for fd in fds:
                os.close(fd)
            self.attach(msg["env"], msg.get("sb") or {})
        elif msg["t"] == "kill":
            self.kill(msg["env"], int(msg.get("sig", signal.SIGKILL)))
            for fd in fds:
                os.close(fd)
        return True

    def spawn(self, env_id: str, cfg: dict, fds: list[int], exec_: bool = False) -> None:
        if len(fds) != 2 and not (exec_ and len(fds) == 1):
            for fd in fds:
                os.close(fd)
            self.send({"t": "spawn_failed", "env": env_id, "error": f"expected 2 fds, got {len(fds)}"})
            return
        sb = self.sandbox_for(env_id, cfg.get("sb"))
        spare = self._take_spare(env_id, sb)
        if spare is not None:
            # "spawned" goes first: the spare, woken by its job, may take this CPU (load) and the core waits for both
            self._adopt(env_id, spare.pid)
            try:
                socket.send_fds(spare.chan, [protocol.dumps({"exec": exec_, "cfg": cfg, "sb": sb})], fds)
            except OSError:  # it died just now: its reap reports the exit (the environment's Init fails)
                with contextlib.suppress(OSError):
                    os.kill(spare.pid, signal.SIGKILL)
            finally:
                spare.chan.close()
        else:
            zygote_pid = os.getpid()  # taken before the fork: a child that asks getppid() after the zygote died gets 1
            try:
                pid = os.fork()
            except OSError as e:
                for fd in fds:
                    os.close(fd)
                self.send({"t": "spawn_failed", "env": env_id, "error": str(e)})
                return
            if pid == 0:
                self._close_own()
                _start(exec_, cfg, fds, zygote_pid, self.libc, sb)
            with contextlib.suppress(OSError):  # the child may have exited (or set it) already
                os.setpgid(pid, pid)  # also done by the child; doing both closes the race with an early kill
            self._adopt(env_id, pid)
        for fd in fds:
            os.close(fd)
        if self.spare is None:  # once this environment's Init is likely done (see SPARE_AFTER_S)
            self.spare_due = time.monotonic() + SPARE_AFTER_S

    def _adopt(self, env_id: str, pid: int) -> None:
        self.children[pid] = env_id
        self.by_env[env_id] = pid
        self.send({"t": "spawned", "env": env_id, "pid": pid})

    def _take_spare(self, env_id: str, sb: dict | None) -> _Spare | None:
        """The spare, alive and with its groups renamed to ``env_id``, to become that environment; None when there
        is none fit for it (then the caller forks)."""
        spare = self.spare
        if spare is None or spare.kind != (bool(sb and sb.get("cg")), bool(sb and sb.get("mnt"))):
            return None
        self.spare = None
        try:
            if spare.chan.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                raise ConnectionResetError  # it died (EOF); the reap releases its groups
        except BlockingIOError:  # alive and waiting
            pass
        except OSError:
            spare.chan.close()
            return None
        try:
            if spare.cg is not None:
                sandbox.rename_cgroup(self.iso["cg"], spare.cg, env_id)
                self.sandboxes.pop(spare.name, None)
        except OSError:  # killed: its reap releases its groups
            with contextlib.suppress(OSError):
                os.kill(spare.pid, signal.SIGKILL)
            spare.chan.close()
            return None
        del self.children[spare.pid], self.by_env[spare.name]
        return spare

    def _new_spare(self) -> None:
        """Fork the next environment's process ahead of time: it joins a fresh pair of groups (the zygote creates
        them, so it can rename them), prepares its mount namespace and waits for its environment
        (:func:`_spare_main`). Measured per cold start (median of 122, ``python -m bench core``'s kind, timed in the
        processes, load 2.6): the core's spawn to the child running went from 2.06 ms (the fork) to 0.70 ms (the job
        handed over), the mount namespace step from 0.65 to 0.32 ms. It runs at the zygote's priority: as
        SCHED_IDLE (to leave the CPU to the environment starting meanwhile) a starved spare held cgroup_mutex or the
        mount lock that the zygote and the next environment then waited for (cold start p50 16.9 against 9.5 ms at
        34570db, five alternating ``bench core`` runs at load 4.4)."""
        cg = self.iso.get("cg")
        mnt = self.iso.get("mnt")
        name = f"{SPARE_PREFIX}{self.spares_made}"  # never an environment's id (hex, or name-hex)
        self.spares_made += 1
        procs: tuple[int, ...] = ()
        if cg:
            try:
                procs = sandbox.create_cgroup({**cg, "name": name})
            except OSError:
                return  # the next environment is forked (and fails the same way, reported)
            self.sandboxes[name] = {"cg": {**cg, "name": name}}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        zygote_pid = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            ours.close()
            self._close_own()
            _spare_main(theirs, procs, (self._roots(), self.iso.get("keep", [])) if mnt else None, zygote_pid,
                        self.libc)
        theirs.close()
        for fd in procs:
            os.close(fd)
        if pid < 0:
            ours.close()
            self._release_sandbox(name)
            return
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        self.children[pid] = name
        self.by_env[name] = pid
        self.spare = _Spare(name, pid, ours, name if cg else None, (bool(cg), bool(mnt)))

    def _close_own(self) -> None:
        """In a new child: drop the zygote's own descriptors and signal plumbing (and the spare's channel: nothing
        but the zygote may give it work)."""
        signal.set_wakeup_fd(-1)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctrl.close()
        if self.spare is not None:
            self.spare.chan.close()

    def sandbox_for(self, env_id: str, per_env: dict | None) -> dict | None:
        """The whole sandbox of a new environment: what is in force (``iso``) with the environment's own parts
        (the core's ``sb``: its paths, /tmp, memory) and a uid of its own."""
        iso = self.iso
        if per_env is None or not (iso.get("uid_base") is not None or iso.get("cg") or iso.get("mnt")):
            return None
        sb: dict = {"mnt": bool(iso.get("mnt")), "hide": self._roots(), "private_tmp": iso.get("private_tmp"),
                    "keep": [*iso.get("keep", []), *per_env.get("keep", [])], "walk": per_env.get("keep", []),
                    "runtime": iso.get("keep", []),
                    "placeholder_tmp": bool(per_env.get("placeholder_tmp") and iso.get("private_tmp"))}
        if iso.get("uid_base") is not None:
            sb["uid"] = iso["uid_base"] + self.next_uid % iso["uid_count"]
            self.next_uid += 1
        if iso.get("cg"):
            sb["cg"] = {**iso["cg"], "name": env_id, "mem_bytes": per_env["mem_bytes"]}
        tmp = per_env.get("tmp")
        if tmp:
            sb["tmp"] = {**tmp, "tmpfs": bool(iso.get("tmpfs"))}
        self.sandboxes[env_id] = sb
        return sb

    def _roots(self) -> list[str]:
        """The directories covered for the runtime's own paths (:func:`.sandbox.hidden_roots`), looked at once."""
        if self.iso_roots is None:
            self.iso_roots = sandbox.hidden_roots(self.iso.get("keep", []), self.iso.get("hide", []))
        return self.iso_roots

    def attach(self, env_id: str, per_env: dict) -> None:
        pid, sb = self.by_env.get(env_id), self.sandboxes.get(env_id)
        if pid is None or sb is None:
            self.send({"t": "attached", "env": env_id, "error": None if pid else "environment exited"})
            return
        tmp = per_env.get("tmp")
        full = {**sb, "keep": per_env.get("keep", []), "runtime_keep": sb.get("keep", []),
                "mem_bytes": per_env.get("mem_bytes"),
                "tmp": tmp and {**tmp, "tmpfs": bool(self.iso.get("tmpfs"))}}
        r, w = os.pipe()
        helper = os.fork()
        if helper == 0:
            os.close(r)
            code = 0
            try:
                sandbox.attach(self.libc, pid, full)
            except BaseException as e:
                with contextlib.suppress(OSError):
                    os.write(w, str(e).encode()[:2000])
                code = 1
            os._exit(code)
        os.close(w)
        error = b""
        while chunk := os.read(r, 4096):
            error += chunk
        os.close(r)
        while True:
            try:
                _, status = os.waitpid(helper, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                status = 0
                break
        if status != 0 and not error:
            error = f"attach helper exited with status {status}".encode()
        self.send({"t": "attached", "env": env_id, "error": error.decode("utf-8", "replace") or None})

    def kill(self, env_id: str, sig: int = signal.SIGKILL) -> None:
        pid = self.by_env.get(env_id)
        if pid is None:
            return
        for fn in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                fn(pid, sig)
        sb = self.sandboxes.get(env_id)
        if sig == signal.SIGKILL and sb is not None and sb.get("cg"):
            for member in sandbox.cgroup_pids(sb["cg"]):
                with contextlib.suppress(OSError):
                    os.kill(member, signal.SIGKILL)

    def _release_sandbox(self, env_id: str) -> None:
        sb = self.sandboxes.pop(env_id, None)
        if sb is not None and sb.get("cg") and not sandbox.kill_cgroup(sb["cg"]):
            self.cg_pending.append(sb["cg"])
        if self.cg_pending:
            self.cg_pending = [cg for cg in self.cg_pending if not sandbox.kill_cgroup(cg)]

    def reap(self, block: bool) -> None:
        """Reap exited environments. Each one's process group is SIGKILLed first, while its leader is a zombie
        (``WNOWAIT``): the leader's pid, which is the group's id, cannot be reused until it is reaped, so the kill
        reaches exactly what the function started (a runtime that exits, gracefully or not, takes its children
        along, as an execution environment's teardown does on AWS)."""
        while True:  # also reaps orphans (we are their subreaper) while no environment is left
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT | (0 if block and self.children else os.WNOHANG))
            except ChildProcessError:
                self.children.clear()
                return
            except InterruptedError:
                continue
            if info is None or not info.si_pid:
                return
            pid = info.si_pid
            if pid in self.children:
                with contextlib.suppress(OSError):  # no other member left
                    os.killpg(pid, signal.SIGKILL)
            try:
                pid, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            except InterruptedError:
                continue
            env_id = self.children.pop(pid, None)
            if env_id is not None:
                self.by_env.pop(env_id, None)
                if self.spare is not None and self.spare.pid == pid:  # died waiting: the next spawn forks
                    self.spare.chan.close()
                    self.spare = None
                if not env_id.startswith(SPARE_PREFIX):
                    self.send({"t": "exit", "env": env_id, "status": status, "at": time.monotonic()})
                self._release_sandbox(env_id)  # what the function left running (setsid daemons too) dies now

    def shutdown(self) -> None:
        for env_id in list(self.by_env):
            self.kill(env_id)
        self.reap(block=True)
        for env_id in list(self.sandboxes):
            self._release_sandbox(env_id)
        for _ in range(100):
            if not self.cg_pending:
                break
            time.sleep(0.01)
            self.reap(block=False)
            self.cg_pending = [cg for cg in self.cg_pending if not sandbox.kill_cgroup(cg)]


CHANNEL_FD = protocol.CHANNEL_FD
SPARE_PREFIX = "spare."
# The next spare is forked this long after a spawn, when the environment it started has likely finished its Init
# (~5 ms for a small Python function): forked right away, the fork and the spare's preparation took CPU from that
# Init on this loaded 2-core machine (start -> READY p50 9.3 against 6.9 ms at 34570db, 122 cold starts each at
# load 3.5); 10 ms later: 5.1-5.4 against 6.7-6.8 ms (two such runs, load 3.3). A spawn meanwhile is forked.
SPARE_AFTER_S = 0.010


class _Spare(NamedTuple):
    name: str  # its key in children/by_env until it is given an environment
    pid: int
    chan: socket.socket  # the zygote's end: the environment's job and descriptors go here
    cg: str | None  # the name of the groups it joined (None: no cgroups)
    kind: tuple[bool, bool]  # (in groups, in a prepared mount namespace): only a sandbox of that kind may take it


def _start(exec_: bool, cfg: dict, fds: list[int], zygote_pid: int, libc: ctypes.CDLL, sb: dict | None) -> NoReturn:
    """A new environment's process (forked for it, or a spare given it): exec a runtime or run the Python worker."""
    if exec_:
        exec_child(cfg, fds, zygote_pid, libc, sb)
    os.set_inheritable(fds[0], False)  # programs the handler execs must not hold the channel open
    worker.child_main(fds[0], fds[1], cfg, zygote_pid, libc, sb)


def _spare_main(chan: socket.socket, procs: tuple[int, ...], mnt: tuple[list[str], list[str]] | None, zygote_pid: int,
                libc: ctypes.CDLL) -> NoReturn:
    """A spare (never returns): dies with the zygote, joins its groups and prepares its mount namespace
    (``mnt``: the runtime's roots and paths, :func:`.sandbox.prepare_mount_namespace`) now, then waits for its
    environment's job (``{"exec", "cfg", "sb"}`` and the descriptors, as ``spawn``/``exec`` gave them) and becomes
    it; EOF: exit. A namespace it cannot prepare ends it (the zygote forks the next environment)."""
    try:
        worker.set_pdeathsig(libc, zygote_pid)
        joined = False
        if procs:
            with contextlib.suppress(OSError):  # not joined: the environment joins as a forked one does
                sandbox.join_cgroup(procs)
                joined = True
        prepared = sandbox.prepare_mount_namespace(libc, *mnt) if mnt is not None else None
        data, fds, _, _ = socket.recv_fds(chan, protocol.CONTROL_MAX, 4)
        chan.close()
        if not data:
            os._exit(0)
        job = protocol.loads(data)
    except BaseException:
        os._exit(70)
    sb = job["sb"]
    if joined and sb and sb.get("cg"):
        sb["cg"]["joined"] = True
    if prepared is not None and sb and sb.get("mnt"):
        sb["prepared"] = prepared
    _start(job["exec"], job["cfg"], fds, zygote_pid, libc, sb)


def exec_child(msg: dict, fds: list[int], zygote_pid: int, libc: ctypes.CDLL, sb: dict | None = None) -> NoReturn:
    """The child side of ``exec`` (never returns): parent-death signal, own process group, memfd as stdout and
    stderr, /dev/null as stdin, the channel on fd 3 (the only other descriptor left open), default signal
    dispositions except SIGXFSZ (ignored: a write past the /tmp quota fails with EFBIG instead of killing the
    runtime, and the runtime's own children inherit that), then ``execve``. A failure to exec is written to the
    memfd and ends the child with status 127 (the shell's "command not found"), which the core reports as
    ``Runtime.ExitError``."""
    try:
        sandbox.enter(libc, sb)
        worker.set_pdeathsig(libc, zygote_pid)
        os.setpgid(0, 0)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        log_fd = fds[0]
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = 3
        if len(fds) > 1:
            os.dup2(fds[1], CHANNEL_FD)  # dup2 clears close-on-exec on the copy
            keep = CHANNEL_FD + 1
        os.closerange(keep, max(keep, os.sysconf("SC_OPEN_MAX")))  # close_range(2): one syscall
        os.chdir(msg["cwd"])
        argv = [str(a) for a in msg["argv"]]
        os.execve(argv[0], argv, {str(k): str(v) for k, v in msg["envp"].items()})
    except BaseException as e:
        try:
            os.write(2, f"edgelab: cannot start {msg.get('argv', ['?'])[0]}: {e}\n".encode())
        finally:
            os._exit(127)
    os._exit(127)  # not reached: execve replaced the process


def probe(libc: ctypes.CDLL, iso: dict) -> dict:
    """What of ``iso`` the kernel allows here: a mount namespace (and a tmpfs in it) tried in a forked child;
    without it, neither private mounts nor the tmpfs /tmp are used."""
    if not iso.get("mnt") and not iso.get("tmpfs"):
        return iso
    pid = os.fork()
    if pid == 0:
        try:
            if libc.unshare(sandbox.CLONE_NEWNS) != 0:
                os._exit(2)
            if libc.mount(None, b"/", None, sandbox.MS_REC | sandbox.MS_PRIVATE, None) != 0:
                os._exit(3)
            if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, b"size=4k") != 0:
                os._exit(4)
        except BaseException:
            os._exit(5)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        why = {2: "unshare(CLONE_NEWNS) refused", 3: "cannot make mounts private", 4: "cannot mount tmpfs"}
        iso = {**iso, "mnt": False, "tmpfs": False, "private_tmp": False,
               "refused": why.get(os.waitstatus_to_exitcode(status), "mount namespace probe failed")}
    return iso


def own_mount_namespace(libc: ctypes.CDLL) -> None:
    """The zygote's own mount namespace (the host's mounts propagate in, nothing propagates out): the /tmp tmpfs
    of every environment is mounted here, so they all vanish with the zygote, even if the stack is killed, and
    the core's removal of a sandbox directory detaches its tmpfs (a mount point removed in another namespace)."""
    if libc.unshare(sandbox.CLONE_NEWNS) == 0:
        libc.mount(None, b"/", None, sandbox.MS_REC | MS_SLAVE, None)


MS_SLAVE = 1 << 19


def main(argv: list[str]) -> int:
    ctrl_fd, core_pid = int(argv[1]), int(argv[2])
    iso = protocol.loads(argv[3].encode()) if len(argv) > 3 else {}
    libc = worker._libc()
    worker.set_pdeathsig(libc, core_pid)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    iso = probe(libc, iso)
    if iso.get("tmpfs"):
        own_mount_namespace(libc)
    for name in _PRELOAD:
        __import__(name)
    ctrl = socket.socket(fileno=ctrl_fd)
    ctrl.setblocking(True)
    gc.collect()
    gc.freeze()  # children never touch the pre-fork objects' GC headers: fewer copy-on-write pages
    Zygote(ctrl, libc, iso).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
