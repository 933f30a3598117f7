"""Core-side (asyncio) client of the zygote: start it, ask it to fork environments, kill them, learn exit statuses.

Ownership: the :class:`ZygoteClient` owns the zygote process; :meth:`close` closes the control socket (the zygote
then SIGKILLs and reaps every environment and exits) and reaps the zygote itself. If the zygote dies unexpectedly
every environment dies with it (PR_SET_PDEATHSIG); pending exit waiters are resolved with ``None`` and the next
:meth:`spawn` starts a fresh zygote.

The zygote starts with a clean environment (``PATH``, ``PYTHONPATH``, ``LANG`` only): its forked workers' initial
environment block, which ``/proc/<pid>/environ`` shows, never holds the stack's variables or credentials. It gets the
isolation configuration (:mod:`.isolation`) and answers with what is in force (:attr:`ZygoteClient.isolation`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from edge.invocation.runtime import protocol

# (raw wait status or None when unknown (zygote died), CLOCK_MONOTONIC time of the reap or None)
ExitCallback = Callable[[int | None, float | None], None]

PROJECT_ROOT = str(Path(__file__).resolve().parents[3])


class ZygoteError(RuntimeError):
    """The zygote could not be started or could not fork an environment."""


class ZygoteClient:
    def __init__(self, *, start_timeout_s: float = 30.0, isolation: dict | None = None) -> None:
        self._start_timeout = start_timeout_s
        self.isolation_plan: dict = isolation or {}
        self.isolation: dict = {}  # what the zygote found in force (its hello)
        self._attached: dict[str, asyncio.Future[str | None]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._ctrl: socket.socket | None = None
        self._hello: asyncio.Future[int] | None = None
        self._spawned: dict[str, asyncio.Future[int]] = {}
        self._on_exit: dict[str, ExitCallback] = {}
        self._lock = asyncio.Lock()
        self.pid: int | None = None

    def __repr__(self) -> str:
        return f"<ZygoteClient pid={self.pid} alive={self.alive} envs={len(self._on_exit)}>"

    @property
    def alive(self) -> bool:
        return self._ctrl is not None

    async def start(self) -> None:
        async with self._lock:
            if self._ctrl is None:
                await self._start_locked()

    async def _start_locked(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8",
               "PYTHONPATH": PROJECT_ROOT}
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-B", "-m", "edge.invocation.runtime.zygote", str(theirs.fileno()),
                str(os.getpid()), protocol.dumps(self.isolation_plan).decode(), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        ours.setblocking(False)
        self._ctrl = ours
        self._hello = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            async with asyncio.timeout(self._start_timeout):
                self.pid = await self._hello
        except BaseException:
            await self._teardown()
            raise

    def _on_readable(self) -> None:
        assert self._ctrl is not None
        while True:
            try:
                data = self._ctrl.recv(protocol.CONTROL_MAX)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._on_lost()
                return
            self._dispatch(protocol.loads(data))

    def _dispatch(self, msg: dict) -> None:
        kind = msg["t"]
        if kind == "exit":
            cb = self._on_exit.pop(msg["env"], None)
            fut = self._spawned.pop(msg["env"], None)
            if fut is not None and not fut.done():
                fut.set_exception(ZygoteError("environment exited before being reported"))
            if cb is not None:
                cb(msg["status"], msg.get("at"))
        elif kind == "spawned":
            fut = self._spawned.pop(msg["env"], None)
            if fut is not None and not fut.done():
                fut.set_result(msg["pid"])
        elif kind == "spawn_failed":
            self._on_exit.pop(msg["env"], None)
            fut = self._spawned.pop(msg["env"], None)
            if fut is not None and not fut.done():
                fut.set_exception(ZygoteError(msg["error"]))
        elif kind == "attached":
            afut = self._attached.pop(msg["env"], None)
            if afut is not None and not afut.done():
                afut.set_result(msg.get("error"))
        elif kind == "hello" and self._hello is not None and not self._hello.done():
            self.isolation = msg.get("iso") or {}
            self._hello.set_result(msg["pid"])

    def _on_lost(self) -> None:
        """The zygote died or closed: every environment is gone with it."""
        if self._ctrl is not None:
            asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            self._ctrl = None
        for fut in self._spawned.values():
            if not fut.done():
                fut.set_exception(ZygoteError("zygote exited"))
        self._spawned.clear()
        for afut in self._attached.values():
            if not afut.done():
                afut.set_result("zygote exited")
        self._attached.clear()
        callbacks, self._on_exit = self._on_exit, {}
        for cb in callbacks.values():
            cb(None, None)
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(ZygoteError("zygote exited during start-up"))

    async def spawn(self, env_id: str, cfg: dict, worker_fd: int, log_fd: int, on_exit: ExitCallback) -> int:
        """Fork an environment; returns its pid. ``on_exit`` gets the wait status once it has been reaped."""
        return await self._fork({"t": "spawn", "env": env_id, "cfg": cfg}, [worker_fd, log_fd], on_exit)

    async def exec(self, env_id: str, argv: list[str], envp: dict[str, str], cwd: str, log_fd: int,
                   channel_fd: int | None, on_exit: ExitCallback, sb: dict | None = None) -> int:
        """Fork and ``execve`` a runtime process (see :mod:`edge.invocation.runtime.zygote`, ``exec``): stdout
        and stderr on ``log_fd``, ``channel_fd`` (if given) on fd 3 (``zygote.CHANNEL_FD``), exactly ``envp``.
        Returns its pid; ``on_exit`` gets the wait status once it has been reaped (127 if it could not exec)."""
        fds = [log_fd] if channel_fd is None else [log_fd, channel_fd]
        msg = {"t": "exec", "env": env_id, "argv": argv, "envp": envp, "cwd": cwd}
        if sb is not None:  # the environment's part of its sandbox (see isolation.py)
            msg["sb"] = sb
        return await self._fork(msg, fds, on_exit)

    async def _fork(self, msg: dict, fds: list[int], on_exit: ExitCallback) -> int:
        async with self._lock:
            if self._ctrl is None:
                if self._proc is not None:
                    await self._reap_proc()
                await self._start_locked()
        assert self._ctrl is not None
        env_id = msg["env"]
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._spawned[env_id] = fut
        self._on_exit[env_id] = on_exit
        await self._send(msg, fds)
        return await fut

    async def attach(self, env_id: str, sb: dict) -> str | None:
        """Bind a running environment's function paths and /tmp into its mount namespace (``attach``); returns
        None, or the reason it failed."""
        if self._ctrl is None:
            return "zygote exited"
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._attached[env_id] = fut
        await self._send({"t": "attach", "env": env_id, "sb": sb}, [])
        return await fut

    def kill(self, env_id: str, sig: int = signal.SIGKILL) -> None:
        """Signal the environment's process group, SIGKILL by default (no-op once it has been reaped)."""
        if self._ctrl is None:
            return
        msg = {"t": "kill", "env": env_id} if sig == signal.SIGKILL else {"t": "kill", "env": env_id, "sig": int(sig)}
        try:
            self._ctrl.send(protocol.dumps(msg))
        except BlockingIOError:
            asyncio.get_running_loop().call_later(0.01, self.kill, env_id, sig)
        except OSError:
            pass

    async def _send(self, msg: dict, fds: list[int]) -> None:
        data = [protocol.dumps(msg)]
        while True:
            if self._ctrl is None:
                raise ZygoteError("zygote exited")
            try:
                socket.send_fds(self._ctrl, data, fds)
                return
            except BlockingIOError:
                await asyncio.sleep(0.001)  # control socket full: the zygote is busy forking

    async def close(self) -> None:
        async with self._lock:
            await self._teardown()

    async def _teardown(self) -> None:
        if self._ctrl is not None:
            asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self._ctrl.close()  # EOF: the zygote kills and reaps every environment, then exits
            self._ctrl = None
            pending, self._on_exit = self._on_exit, {}
            for cb in pending.values():
                cb(None, None)
        await self._reap_proc()

    async def _reap_proc(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            async with asyncio.timeout(5.0):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
