"""The supervisor with real child processes: readiness, orderly stop, reaping, failure propagation."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from edge.control.stack.supervisor import Child, StartupError, Supervisor

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_child(name: str) -> Child:
    port = free_port()
    return Child(name, [sys.executable, "-c", SERVER, str(port)], health_url=f"http://127.0.0.1:{port}/")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_start_waits_for_health_then_stop_reaps_everything() -> None:
    children = [server_child("a"), server_child("b")]
    sup = Supervisor(children)
    await sup.start()
    pids = [c.proc.pid for c in children]  # type: ignore[union-attr]
    assert all(alive(p) for p in pids)
    await sup.stop()
    assert all(c.proc.returncode is not None for c in children)  # type: ignore[union-attr]
    assert not any(alive(p) for p in pids)


async def test_child_that_ignores_sigterm_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.control.stack.supervisor.STOP_GRACE_S", 0.5)
    stubborn = Child("stubborn", [sys.executable, "-c",
                                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
    sup = Supervisor([stubborn])
    await sup.start()
    await asyncio.sleep(0.2)  # let it install its handler
    await sup.stop()
    assert stubborn.proc is not None and stubborn.proc.returncode == -9


async def test_child_exiting_during_startup_is_reported() -> None:
    bad = Child("bad", [sys.executable, "-c", "raise SystemExit(3)"], health_url=f"http://127.0.0.1:{free_port()}/")
    sup = Supervisor([bad])
    with pytest.raises(StartupError, match="exited during startup with status 3"):
        await sup.start()
    await sup.stop()


async def test_unexpected_child_death_ends_the_stack() -> None:
    short = Child("short", [sys.executable, "-c", "import time; time.sleep(0.3)"])
    longer = server_child("long")
    sup = Supervisor([longer, short])
    await sup.start()
    rc = await asyncio.wait_for(sup.wait(asyncio.Event()), 10)
    assert rc == 1
    await sup.stop()
    assert longer.proc is not None and longer.proc.returncode is not None


async def test_stop_event_ends_wait_with_zero() -> None:
    child = server_child("a")
    sup = Supervisor([child])
    await sup.start()
    stop = asyncio.Event()
    stop.set()
    assert await sup.wait(stop) == 0
    await sup.stop()


async def test_stop_during_startup_stops_at_once() -> None:
    """SIGINT/SIGTERM while a child is still starting (the stop event set) ends the startup at once, not after the
    readiness timeout (30 s): a Ctrl-C or a parent's death during startup used to wait it out."""
    import time

    from edge.control.stack.supervisor import StartupStopped

    never_ready = Child("slow", [sys.executable, "-c", "import time; time.sleep(60)"],
                        health_url=f"http://127.0.0.1:{free_port()}/")
    sup = Supervisor([never_ready])
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)
    started = time.monotonic()
    with pytest.raises(StartupStopped):
        await sup.start(stop)
    assert time.monotonic() - started < 5
    await sup.stop()
    assert never_ready.proc is not None and never_ready.proc.returncode is not None


def test_die_with_parent_follows_a_parent_killed_outright(tmp_path: Path) -> None:
    """edge.control.stack.node.die_with_parent (what EDGELAB_EXIT_WITH_PARENT asks of `edgelab serve`): the child
    gets SIGTERM when its parent is SIGKILLed."""
    import signal
    import subprocess
    import time

    armed = tmp_path / "armed"
    child_code = ("import os, sys, time\nfrom edge.control.stack.node import die_with_parent\n"
                  "die_with_parent(os.getppid())\nopen(sys.argv[1], 'w').close()\ntime.sleep(30)\n")
    middle = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               f"p = subprocess.Popen([sys.executable, '-c', {child_code!r}, {str(armed)!r}])\n"
                               "print(p.pid, flush=True)\ntime.sleep(30)\n"], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    pid = int(middle.stdout.readline())
    deadline = time.monotonic() + 30
    while not armed.exists() and time.monotonic() < deadline:  # the child has asked for its parent-death signal
        time.sleep(0.05)
    middle.kill()
    middle.wait()
    deadline = time.monotonic() + 10
    state = "?"
    while time.monotonic() < deadline:
        try:  # gone, or a zombie waiting for PID 1 to reap it: either way it ended
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        if state in ("Z", "gone"):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    assert armed.exists() and state in ("Z", "gone")


async def test_a_ready_later_child_starts_with_the_next_ones_and_is_awaited_at_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tier nodes (``ready_later``) start while the POPs do: the next child is spawned before the tier is awaited
    ready, and start() returns only when every child is ready."""
    events: list[str] = []
    spawn, wait_ready = Supervisor._spawn, Supervisor._wait_ready

    async def spawned(self: Supervisor, child: Child) -> None:
        await spawn(self, child)
        events.append(f"spawn {child.name}")

    async def ready(self: Supervisor, child: Child, session: object, stop: asyncio.Event | None) -> None:
        await wait_ready(self, child, session, stop)  # type: ignore[arg-type]
        events.append(f"ready {child.name}")

    monkeypatch.setattr(Supervisor, "_spawn", spawned)
    monkeypatch.setattr(Supervisor, "_wait_ready", ready)
    later = server_child("tier")
    later.ready_later = True
    sup = Supervisor([server_child("control"), later, server_child("pop")])
    try:
        await sup.start()
        assert events == ["spawn control", "ready control", "spawn tier", "spawn pop", "ready pop", "ready tier"]
    finally:
        await sup.stop()
