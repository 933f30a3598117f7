"""The fork server: one per Executor, started with ``python -m edge.invocation.runtime.zygote CTRL_FD CORE_PID``.

It pre-imports the worker runtime and heavy stdlib modules once, freezes the GC generations (so children do not
dirty the shared pages), then serves control messages (see :mod:`.protocol`):

- ``spawn``: receive ``[worker_socket, log_memfd]`` with the message, fork; the child runs
  :func:`.worker.child_main`; the parent closes its copies and answers ``spawned`` with the pid.
- ``kill``: SIGKILL the environment's process group (only while the child is not yet reaped, so a recycled pid
  is never hit).
- SIGCHLD: reap every exited child with ``waitpid`` and report ``exit`` with the raw wait status.
- EOF on the control socket (the core closed it or died): SIGKILL every child, reap them, exit.

The zygote dies with the core (PR_SET_PDEATHSIG), and each child dies with the zygote.
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

from edge.invocation.runtime import protocol, worker

# Modules handlers commonly import: importing them here makes them free in every child (shared pages).
_PRELOAD = ("base64", "hashlib", "datetime", "uuid", "urllib.parse", "re", "random", "collections",
            "dataclasses", "typing", "email.utils", "http.client", "zlib", "copy", "functools", "itertools")


class Zygote:
    def __init__(self, ctrl: socket.socket, libc: ctypes.CDLL) -> None:
        self.ctrl = ctrl
        self.libc = libc
        self.children: dict[int, str] = {}  # pid -> env id (only children not yet reaped)
        self.by_env: dict[str, int] = {}
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def send(self, msg: dict) -> None:
        with contextlib.suppress(OSError):  # the core is gone; EOF handling will shut us down
            self.ctrl.send(protocol.dumps(msg))

    def run(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        poller = select.poll()
        poller.register(self.ctrl.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        self.send({"t": "hello", "pid": os.getpid()})
        while True:
            try:
                events = poller.poll()
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
        elif msg["t"] == "kill":
            self.kill(msg["env"])
            for fd in fds:
                os.close(fd)
        return True

    def spawn(self, env_id: str, cfg: dict, fds: list[int]) -> None:
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send({"t": "spawn_failed", "env": env_id, "error": "expected 2 fds"})
            return
        os.set_inheritable(fds[0], False)  # programs the handler execs must not hold the channel open
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds:
                os.close(fd)
            self.send({"t": "spawn_failed", "env": env_id, "error": str(e)})
            return
        if pid == 0:
            self._in_child(fds, cfg)
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):  # the child may have exited (or set it) already
            os.setpgid(pid, pid)  # also done by the child; doing both closes the race with an early kill
        self.children[pid] = env_id
        self.by_env[env_id] = pid
        self.send({"t": "spawned", "env": env_id, "pid": pid})

    def _in_child(self, fds: list[int], cfg: dict) -> None:
        zygote_pid = os.getppid()
        signal.set_wakeup_fd(-1)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctrl.close()
        worker.child_main(fds[0], fds[1], cfg, zygote_pid, self.libc)

    def kill(self, env_id: str) -> None:
        pid = self.by_env.get(env_id)
        if pid is None:
            return
        for fn in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                fn(pid, signal.SIGKILL)

    def reap(self, block: bool) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            env_id = self.children.pop(pid, None)
            if env_id is not None:
                self.by_env.pop(env_id, None)
                self.send({"t": "exit", "env": env_id, "status": status, "at": time.monotonic()})

    def shutdown(self) -> None:
        for env_id in list(self.by_env):
            self.kill(env_id)
        self.reap(block=True)


def main(argv: list[str]) -> int:
    ctrl_fd, core_pid = int(argv[1]), int(argv[2])
    libc = worker._libc()
    worker.set_pdeathsig(libc, core_pid)
    for name in _PRELOAD:
        __import__(name)
    ctrl = socket.socket(fileno=ctrl_fd)
    ctrl.setblocking(True)
    gc.collect()
    gc.freeze()  # children never touch the pre-fork objects' GC headers: fewer copy-on-write pages
    Zygote(ctrl, libc).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
