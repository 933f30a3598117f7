"""Runtime processes started through the zygote (edge/invocation/execution/runtime_process.py ZygoteProcess, the
zygote's ``exec``): exactly the environment given, the channel on fd 3 and nothing else open, output in the memfd,
SIGXFSZ ignored and SIGPIPE default, exec failures as exit 127, the whole group killed, and the parent-death signal
(the zygote dying takes its runtimes along)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from edge.invocation.execution.environment import describe_exit
from edge.invocation.execution.runtime_process import OUTPUT_LIMIT, RuntimeChild, ZygoteProcess
from edge.invocation.execution.zygote_client import ZygoteClient
from tests.invocation.execution.test_node_process import group_alive, wait_group_gone

pytestmark = pytest.mark.timeout(60)

PROBE = r"""
import json, os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    with open(sys.argv[1], "wb") as f:
        f.write(b"x" * 8192)
    fsize = "no error"
except OSError as e:
    fsize = e.errno
out = {"env": dict(os.environ), "cwd": os.getcwd(), "fds": sorted(int(x) for x in os.listdir("/proc/self/fd")),
       "fd3": os.fstat(3).st_mode if 3 in [int(x) for x in os.listdir("/proc/self/fd")] else None,
       "fsize": fsize, "pgid": os.getpgid(0) == os.getpid()}
os.write(3, json.dumps(out).encode())
print("to stdout", flush=True); print("to stderr", file=sys.stderr)
"""


async def test_exec_gives_exactly_what_was_asked(tmp_path: Path) -> None:
    zygote = ZygoteClient()
    await zygote.start()
    core, child = socket.socketpair()
    try:
        # -S -E: no site packages, no PYTHON* variables; the probe checks what the zygote's child set up
        proc = await ZygoteProcess.start(zygote, [sys.executable, "-S", "-E", "-c", PROBE, str(tmp_path / "big")],
                                         env={"ONLY": "this"}, cwd=str(tmp_path), channel_fd=child.fileno(),
                                         name="probe")
        child.close()
        assert await proc.wait(20.0) == 0, proc.output()
        got = json.loads(core.recv(65536))
        assert got["env"] == {"ONLY": "this", "LC_CTYPE": "C.UTF-8"} or got["env"] == {"ONLY": "this"}
        assert got["cwd"] == str(tmp_path) and got["fds"][:4] == [0, 1, 2, 3] and len(got["fds"]) <= 5
        assert got["pgid"] and got["fsize"] == 27  # EFBIG: a write past RLIMIT_FSIZE fails, no SIGXFSZ kill
        assert proc.take_output() == b"to stdout\nto stderr\n" and proc.output() == b""
        assert proc.exit_at is not None and not proc.alive
        proc.close()
        # signal dispositions as the runtime finds them (Python would change its own, so a shell reads them)
        sh = await ZygoteProcess.start(zygote, ["/bin/sh", "-c", "grep SigIgn /proc/$$/status"], env={}, cwd="/")
        assert await sh.wait(10.0) == 0
        ignored = int(sh.output().split()[1], 16)
        assert ignored & (1 << (signal.SIGXFSZ - 1)) and not ignored & (1 << (signal.SIGPIPE - 1))
        sh.close()
    finally:
        core.close()
        await zygote.close()


async def test_exec_failure_kill_group_and_parent_death(tmp_path: Path) -> None:
    zygote = ZygoteClient()
    await zygote.start()
    try:
        missing = await ZygoteProcess.start(zygote, [str(tmp_path / "nope")], env={}, cwd=str(tmp_path))
        status = await missing.wait(10.0)
        assert describe_exit(status) == "Runtime exited with error: exit status 127"
        assert b"edgelab: cannot start" in missing.output()
        missing.close()
        script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
        proc = await ZygoteProcess.start(zygote, [sys.executable, "-S", "-c", script], env={}, cwd="/")
        await _wait_children(proc.pid)
        proc.terminate()  # SIGTERM to the group: Python's default is to die
        assert describe_exit(await proc.wait(10.0)) == "Runtime exited with error: signal: terminated"
        proc.close()
        proc = await ZygoteProcess.start(zygote, [sys.executable, "-S", "-c", script], env={}, cwd="/")
        grandchildren = await _wait_children(proc.pid)
        proc.kill()
        assert describe_exit(await proc.wait(10.0)) == "Runtime exited with error: signal: killed"
        for pid in grandchildren:
            assert await wait_group_gone(pid) or not _alive(pid)
        proc.close()
        # the zygote dies: every runtime it started dies too (PR_SET_PDEATHSIG armed before exec)
        proc = await ZygoteProcess.start(zygote, ["/bin/sleep", "300"], env={}, cwd="/")
        assert group_alive(proc.pid)
        assert zygote.pid is not None
        os.kill(zygote.pid, signal.SIGKILL)
        assert await wait_group_gone(proc.pid)
        assert await proc.wait(5.0) is None  # reported as unknown: the zygote that would have reaped it is gone
    finally:
        await zygote.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


async def _wait_children(pid: int) -> list[int]:
    for _ in range(200):
        kids = _children(pid)
        if kids:
            return kids
        await asyncio.sleep(0.02)
    raise AssertionError(f"{pid} started no child")


def test_bound_output_frees_a_flood_but_keeps_the_head_and_the_count() -> None:
    """While an invocation floods its output, the memfd's pages past the kept 1 MiB head are freed (st_blocks),
    its size still counts every byte, and the drained output is what it would have been."""
    fd = os.memfd_create("flood-test", os.MFD_CLOEXEC)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
    child = RuntimeChild(fd)
    try:
        head = bytes(range(256)) * (OUTPUT_LIMIT // 256)
        os.write(fd, head)
        child.bound_output()  # 1 MiB: nothing to free
        assert os.fstat(fd).st_blocks * 512 >= OUTPUT_LIMIT
        for _ in range(4):  # 4 x 4 MiB, bounded after each burst as the 10 ms samples do
            for _ in range(64):
                os.write(fd, b"f" * 65536)
            child.bound_output()
            st = os.fstat(fd)
            assert st.st_blocks * 512 <= 2 * OUTPUT_LIMIT + 65536, st.st_blocks
        assert os.fstat(fd).st_size == OUTPUT_LIMIT + 16 * OUTPUT_LIMIT
        out = child.take_output()
        assert out.startswith(head) and out[len(head):] == (
            f"\n[edgelab] {16 * OUTPUT_LIMIT} bytes of function output truncated\n".encode())
        os.write(fd, b"next invocation\n")  # drained: the next invocation starts at offset 0, bounded afresh
        child.bound_output()
        assert child.take_output() == b"next invocation\n"
    finally:
        child.close()
