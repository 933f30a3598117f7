"""Hostile functions against a real stack (``edgelab serve``: supervisor, control process, a POP), issue 18 items
2-5: each attack is a function created and invoked through the Lambda API, asserting what AWS would give.

The state directory is outside /tmp (under /var/tmp) so that the literal /tmp can be private to each environment
(the stack says so in its isolation line; skipped where the mechanisms are not available: not root, no mount
namespace). https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (1,024 processes and threads,
/tmp 512-10,240 MB), https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from edge.invocation import zip_files
from tests.control.stack.test_serve import REPO, descendants, free_ports

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root (the stack falls back otherwise)")

SECRET = "edgelab-stack-secret-0123456789"

PY = '''
import base64, errno, json, os, signal, socket, subprocess, sys, time

def _try(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def kill(event, context):
    return {str(p): _try(lambda p=p: os.kill(p, signal.SIGKILL)) for p in event["pids"]}

def snoop(event, context):
    out = {"environ": {}, "files": {}}
    for p in event["pids"]:
        out["environ"][str(p)] = _try(lambda p=p: open(f"/proc/{p}/environ", "rb").read())
    for f in event["files"]:
        out["files"][f] = _try(lambda f=f: open(f, "rb").read(1))
    out["listing"] = _try(lambda: os.listdir(event["state"]))
    out["visible"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["self_environ"] = open("/proc/self/environ", "rb").read().decode("utf-8", "replace")
    out["env"] = dict(os.environ)
    return out

def tmp(event, context):
    if event.get("write"):
        open("/tmp/" + event["write"], "w").write("mine")
    shared = {d: _try(lambda d=d: open(d + "/edgelab-channel", "w").write("x")) for d in ("/dev/shm", "/var/tmp")}
    return {"tmp": sorted(os.listdir("/tmp")), "tmpdir": os.environ.get("TMPDIR"), "shared": shared}

def flood_tmp(event, context):
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        with open("/tmp/flood", "wb") as f:
            while written < (4 << 30):
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        err = errno.errorcode.get(e.errno)
    st = os.stat("/tmp/flood")
    os.remove("/tmp/flood")
    return {"error": err, "written": written, "blocks": st.st_blocks * 512}

def fork_bomb(event, context):
    kids, error = [], None
    for _ in range(event["n"]):
        try:  # posix_spawn: vfork + exec, cheap enough for a thousand children
            pid = os.posix_spawn("/bin/sleep", ["sleep", "60"], {})
        except OSError as e:
            error = errno.errorcode.get(e.errno)
            break
        kids.append(pid)
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
    for pid in kids:
        os.waitpid(pid, 0)
    return {"forked": len(kids), "error": error}

def child_memory_bomb(event, context):
    pid = os.fork()
    if pid == 0:
        hog = bytearray(event["mb"] << 20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(30)
        os._exit(0)
    os.waitpid(pid, 0)
    return {"survived": True}

def daemon(event, context):
    if event.get("hang"):
        time.sleep(30)
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            time.sleep(600)
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 32))
    return {"daemon": pid}

def hang(event, context):
    time.sleep(30)

def flood_stdout(event, context):
    line = "y" * 1023
    for _ in range(event["lines"]):
        print(line)
    return {"done": True}
'''

NODE = '''
const fs = require('fs');
exports.kill = async (event) => {
  const out = {};
  for (const p of event.pids) {
    try { process.kill(p, 'SIGKILL'); out[p] = 'ok'; } catch (e) { out[p] = e.code; }
  }
  return out;
};
exports.flood = async () => {
  const chunk = Buffer.alloc(1 << 20, 120);
  let written = 0, error = null;
  const fd = fs.openSync('/tmp/flood', 'w');
  try {
    while (written < 4 * 1024 * 1024 * 1024) { written += fs.writeSync(fd, chunk); }
  } catch (e) { error = e.code; }
  fs.closeSync(fd);
  const blocks = fs.statSync('/tmp/flood').blocks * 512;
  fs.unlinkSync('/tmp/flood');
  return { error, written, blocks, tmpdir: process.env.TMPDIR };
};
'''


@pytest.fixture(scope="module")
def stack() -> Any:
    state = Path(tempfile.mkdtemp(prefix="edgelab-security-", dir="/var/tmp"))
    iad, fra, nrt, api, origin = free_ports(5)
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(state),
           "--pop", f"IAD={iad}", "--pop", f"FRA={fra}", "--pop", f"NRT={nrt}", "--api-port", str(api),
           "--origin-port", str(origin)]
    env = dict(os.environ, EDGELAB_TEST_SECRET=SECRET, AWS_ACCESS_KEY_ID="AKIASTACKOWNKEY00000",
               AWS_SECRET_ACCESS_KEY=SECRET)
    log = open(state / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{api}/2015-03-31/functions", timeout=2).ok, 40)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise AssertionError((state / "serve.log").read_text()[-4000:]) from None
    import boto3
    from botocore.config import Config

    lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{api}", region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x",
                       config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    made: set[str] = set()

    def fn(name: str, handler: str, *, runtime: str = "python3.12", timeout: int = 10, memory: int = 128,
           files: dict[str, str] | None = None, **extra: Any) -> str:
        if name not in made:
            files = files or ({"index.js": NODE} if runtime.startswith("nodejs") else {"app.py": PY})
            lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                                Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": zip_files(files)},
                                Timeout=timeout, MemorySize=memory, **extra)
            made.add(name)
        return name

    def invoke(name: str, event: object, tail: bool = False) -> tuple[dict, Any, str]:
        out = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(),
                         LogType="Tail" if tail else "None")
        log_tail = base64.b64decode(out.get("LogResult", "")).decode("utf-8", "replace")
        return out, json.loads(out["Payload"].read()), log_tail

    yield {"proc": proc, "state": state, "pids": [proc.pid, *_stack_processes(proc.pid)], "fn": fn,
           "invoke": invoke, "log": state / "serve.log"}
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    shutil.rmtree(state, ignore_errors=True)


def _stack_processes(root: int) -> list[int]:
    """The supervisor's descendants but the zygotes' children: those are environments, and the spare each zygote
    forks ahead for its next cold start, which may become the very function trying to kill them."""
    def parent_cmdline(pid: int) -> bytes:
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            return Path(f"/proc/{ppid}/cmdline").read_bytes()
        return b""

    return sorted(p for p in descendants(root) if b"edge.invocation.runtime.zygote" not in parent_cmdline(p))


def wait_until(pred: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(requests.RequestException):
            if pred():
                return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def test_the_stack_says_what_isolation_is_in_force(stack: Any) -> None:
    text = stack["log"].read_text()
    line = next((ln for ln in text.splitlines() if "isolation:" in ln), "")
    assert "own uid per environment" in line and "cgroup memory+pids" in line, text[-3000:]
    assert "/tmp: tmpfs at the quota on the literal /tmp" in line


@pytest.mark.parametrize(("runtime", "handler"), [("python3.12", "app.kill"), ("nodejs20.x", "index.kill")])
def test_a_function_cannot_kill_the_pop_the_control_process_or_the_supervisor(stack: Any, runtime: str,
                                                                               handler: str) -> None:
    name = stack["fn"](f"killer-{runtime[:4]}", handler, runtime=runtime)
    _, out, _ = stack["invoke"](name, {"pids": stack["pids"]})
    assert set(out.values()) <= {"EPERM", "ESRCH"}, out
    time.sleep(0.5)
    assert stack["proc"].poll() is None and all(_alive(p) for p in stack["pids"])


def test_no_snooping_on_the_stack_its_files_or_other_functions(stack: Any) -> None:
    state: Path = stack["state"]
    other = stack["fn"]("victim", "victim.handler", files={"victim.py": "def handler(e, c):\n    return 1\n"})
    stack["invoke"](other, {})
    victim_code = next(p for p in state.rglob("victim.py"))  # another function's code on the host
    registry = next(p for p in state.rglob("*.db"))
    name = stack["fn"]("snoop", "app.snoop")
    _, out, _ = stack["invoke"](name, {"pids": stack["pids"], "files": [str(registry), str(victim_code)],
                                       "state": str(state)})
    assert "environ" in out, out
    assert set(out["environ"].values()) <= {"ENOENT", "EACCES", "ESRCH"}, out["environ"]
    assert set(out["files"].values()) == {"ENOENT"}, out["files"]  # the state dir is not there at all
    assert not set(out["visible"]) & set(stack["pids"])  # /proc shows none of the stack's processes
    assert SECRET not in out["self_environ"] and SECRET not in json.dumps(out["env"])
    assert "EDGELAB_TEST_SECRET" not in out["env"] and "EDGELAB_TEST_SECRET" not in out["self_environ"]
    key = out["env"]["AWS_ACCESS_KEY_ID"]
    assert key.startswith("ASIA") and len(key) == 20 and key != "AKIASTACKOWNKEY00000"
    assert out["env"]["AWS_SECRET_ACCESS_KEY"] and out["env"]["AWS_SESSION_TOKEN"]


def test_tmp_is_private_to_each_environment(stack: Any) -> None:
    a, b = stack["fn"]("tmp-a", "app.tmp"), stack["fn"]("tmp-b", "app.tmp")
    _, first, _ = stack["invoke"](a, {"write": "a-secret"})
    # a checkout or venv under /tmp is attached again, read-only, inside each environment's private /tmp (the
    # runtime needs it): its top directory is the one entry the function did not write
    runtime = {Path(p).resolve().parts[2] for p in (sys.prefix, str(REPO)) if Path(p).resolve().parts[1:2] == ("tmp",)}
    assert [n for n in first["tmp"] if n not in runtime] == ["a-secret"] and first["tmpdir"] == "/tmp"
    # the host's other world-writable folders are no channel between environments (nor storage past the quota)
    assert set(first["shared"].values()) <= {"EACCES", "EROFS"}, first["shared"]
    _, second, _ = stack["invoke"](b, {})
    assert [n for n in second["tmp"] if n not in runtime] == []


@pytest.mark.parametrize(("runtime", "handler"), [("python3.12", "app.flood_tmp"), ("nodejs20.x", "index.flood")])
def test_tmp_flood_ends_with_enospc_at_the_quota(stack: Any, runtime: str, handler: str) -> None:
    name = stack["fn"](f"flood-{runtime[:4]}", handler, runtime=runtime, EphemeralStorage={"Size": 512})
    res, out, _ = stack["invoke"](name, {})
    assert "FunctionError" not in res and "error" in out, out
    assert out["error"] == "ENOSPC"
    assert 500 << 20 <= out["blocks"] <= 512 << 20  # exactly the quota (less tmpfs's own few pages)


def test_fork_bomb_stops_at_1024_processes(stack: Any) -> None:
    name = stack["fn"]("forker", "app.fork_bomb", timeout=60)
    _, out, _ = stack["invoke"](name, {"n": 1500})
    assert "error" in out, out
    assert out["error"] == "EAGAIN" and 900 <= out["forked"] < 1024, out


def test_memory_bomb_in_a_child_is_out_of_memory(stack: Any) -> None:
    name = stack["fn"]("hog", "app.child_memory_bomb", timeout=20)
    res, out, _ = stack["invoke"](name, {"mb": 400})
    assert res.get("FunctionError") == "Unhandled"
    assert out["errorType"] == "Runtime.OutOfMemory", out


def test_a_setsid_daemon_dies_with_its_environment(stack: Any) -> None:
    """A double-forked ``setsid`` daemon leaves the environment's process group but not its cgroup: when the
    environment is reset (here: the next invocation times out) every process it started is killed."""
    name = stack["fn"]("daemon", "app.daemon", timeout=2)
    _, out, _ = stack["invoke"](name, {})
    pid = out["daemon"]
    assert _alive(pid)
    _, err, _ = stack["invoke"](name, {"hang": True})
    assert err["errorType"] == "Sandbox.Timedout"
    wait_until(lambda: not _alive(pid), 10)


def test_stdout_flood_is_truncated_and_the_function_succeeds(stack: Any) -> None:
    name = stack["fn"]("chatty", "app.flood_stdout", timeout=30)
    res, out, tail = stack["invoke"](name, {"lines": 20_000}, tail=True)  # ~20 MB of output
    assert out == {"done": True} and "FunctionError" not in res
    assert "bytes of function output truncated" in tail and "REPORT RequestId" in tail
