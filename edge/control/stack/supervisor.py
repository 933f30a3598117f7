"""The `edgelab serve` supervisor: starts the stack's processes, waits until each is ready, and reaps them.

Processes (each a ``python -m edge.control.stack.node ROLE`` child, or ``python -m origin`` for the demo origin):

- ``origin``: the demo web app, only when no distribution file is given (demo mode);
- ``control``: Lambda-compatible API + admin API + dashboard on ``--api-port``; creates and publishes the
  functions declared in the settings before the POPs start, so their associations resolve;
- ``tier`` (one per region of a POP or of an Origin Shield): the regional edge cache of that region
  (``edge.control.stack.tier_node``), started after the POPs (it binds a free port, which must not be one a POP
  is about to bind); nothing waits for one to start (a POP finds its regional edge cache when a miss goes there),
  so they are spawned together and awaited ready at the end (``Child.ready_later``);
- ``pop`` (one per POP): the caching reverse proxy of one region, with its own warm pools.

The supervisor owns every child: it starts them in order, waits for their readiness (health endpoints),
forwards SIGINT/SIGTERM as SIGTERM, escalates to SIGKILL after a grace period, and awaits each exit status.
If any child dies unexpectedly the whole stack is stopped (a half-running stack is worse than none).
Children also set PR_SET_PDEATHSIG so that a ``kill -9`` of the supervisor does not leave them behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.supervisor")

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    health_url: str | None = None  # TCP health endpoint
    health_unix: str | None = None  # unix socket path of an admin app (GET /health)
    proc: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    ready_later: bool = False  # awaited ready after every other child started (nothing later waits for it)

    def __repr__(self) -> str:
        state = "not started" if self.proc is None else f"pid={self.proc.pid} rc={self.proc.returncode}"
        return f"<Child {self.name} {state}>"


class StartupError(RuntimeError):
    """A child failed to start or to become ready."""


class StartupStopped(Exception):
    """SIGINT/SIGTERM arrived while the children were starting (the stack stops at once)."""


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self._stopping = False

    async def _spawn(self, child: Child) -> None:
        env = dict(os.environ)
        env.update(child.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        child.proc = await asyncio.create_subprocess_exec(*child.argv, env=env, stdin=asyncio.subprocess.DEVNULL)
        log.info("started %s (pid %d)", child.name, child.proc.pid)

    async def _wait_ready(self, child: Child, session: aiohttp.ClientSession, stop: asyncio.Event | None) -> None:
        assert child.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while loop.time() < deadline:
            if stop is not None and stop.is_set():  # SIGINT/SIGTERM while starting: stop now, not after the wait
                raise StartupStopped(child.name)
            if child.proc.returncode is not None:
                raise StartupError(f"{child.name} exited during startup with status {child.proc.returncode}")
            if await self._probe(child, session):
                return
            await asyncio.sleep(0.05)
        raise StartupError(f"{child.name} did not become ready within {READY_TIMEOUT_S:.0f} s")

    @staticmethod
    async def _probe(child: Child, session: aiohttp.ClientSession) -> bool:
        try:
            if child.health_unix:  # a socket not created yet fails to connect: not ready
                conn = aiohttp.UnixConnector(path=child.health_unix)
                async with aiohttp.ClientSession(connector=conn) as s, s.get("http://pop/health") as r:
                    return r.status == 200
            if child.health_url:
                async with session.get(child.health_url) as r:
                    return r.status == 200
            return True
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Start the children in order, each ready before the next; ``stop`` set meanwhile raises StartupStopped."""
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            deferred: list[Child] = []
            for child in self.children:
                await self._spawn(child)
                if child.ready_later:  # starts while the next ones do
                    deferred.append(child)
                    continue
                await self._wait_ready(child, session, stop)
                log.info("%s ready", child.name)
            for child in deferred:
                await self._wait_ready(child, session, stop)
                log.info("%s ready", child.name)

    async def wait(self, stop: asyncio.Event) -> int:
        """Wait until ``stop`` is set or a child exits. Returns the exit status for the supervisor."""
        tasks = TaskOwner("edgelab-supervisor-wait")  # the losers of the race are cancelled and awaited on exit
        waiters: dict[asyncio.Task[int], Child] = {}
        for c in self.children:
            if c.proc:
                waiter = tasks.spawn(c.proc.wait(), name=c.name)
                assert waiter is not None  # a new owner without key or limit declines nothing
                waiters[waiter] = c
        stop_task = tasks.spawn(stop.wait(), name="stop")
        assert stop_task is not None
        try:
            done, _ = await asyncio.wait([*waiters, stop_task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await tasks.aclose()
        if stop_task in done:
            return 0
        dead = [waiters[t] for t in done if t in waiters]
        for c in dead:
            log.error("%s exited unexpectedly with status %s; stopping the stack", c.name, c.proc and c.proc.returncode)
        return 1

    async def stop(self) -> None:
        """SIGTERM every running child (reverse start order), SIGKILL after the grace period, reap all."""
        self._stopping = True
        running = [(c, c.proc) for c in reversed(self.children) if c.proc and c.proc.returncode is None]
        for _, proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for c, proc in running:
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("%s did not stop within %.0f s; killing it", c.name, STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def supervise(children: list[Child], *, banner: str = "") -> int:
    """Run the stack until SIGINT/SIGTERM or a child failure. Returns the process exit status."""
    sup = Supervisor(children)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await sup.start(stop)
        except StartupStopped:
            return 0
        except StartupError as exc:
            print(f"edgelab: {exc}", file=sys.stderr)
            return 1
        if banner:
            print(banner, flush=True)
        return await sup.wait(stop)
    finally:
        await sup.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def state_paths(state_dir: Path) -> dict[str, Path]:
    run = state_dir / "run"
    return {"run": run}
