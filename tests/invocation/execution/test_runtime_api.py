"""Custom runtimes (edge/invocation/execution/runtime_api.py): the Runtime API served to real bootstrap processes
on 127.0.0.1 — AWS's tutorial bash bootstrap (curl), AWS's Python runtime interface client unmodified
(``python -m awslambdaric``, carried by the function package), and small Python bootstraps that misbehave on
purpose. Rows refer to runtimes.md §6 (37-43)."""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from edge.invocation.execution.environment import Kind
from edge.invocation.execution.runtime_api import CustomConfig, CustomRuntime, error_payload
from tests.invocation.fixtures.node_support import write_files

pytestmark = pytest.mark.timeout(60)

ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"

# The bootstrap of AWS's custom runtime tutorial (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-walkthrough.html)
BASH_BOOTSTRAP = """#!/bin/sh
set -euo pipefail
source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"
while true
do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")
  curl -sS "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response"  -d "$RESPONSE"
done
""".replace("#!/bin/sh", "#!/bin/bash")
BASH_FUNCTION = """function handler () {
  EVENT_DATA=$1
  echo "$EVENT_DATA" 1>&2;
  RESPONSE="Echoing request: '$EVENT_DATA'"
  echo $RESPONSE
}
"""


def py_bootstrap(body: str) -> str:
    """A bootstrap in Python (stdlib only): ``api(method, path, body, headers)`` talks to the Runtime API."""
    return (f"#!{sys.executable}\nimport http.client, json, os, sys\n"
            "HOST, PORT = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')\n"
            "def api(method, path, body=None, headers=None):\n"
            "    c = http.client.HTTPConnection(HOST, int(PORT), timeout=60)\n"
            "    c.request(method, '/2018-06-01/runtime' + path, body=body, headers=headers or {})\n"
            "    r = c.getresponse(); data = r.read(); c.close()\n"
            "    return r.status, dict(r.getheaders()), data\n" + body)


def make_runtime(tmp_path: Path, files: dict[str, str | bytes], *, modes: dict[str, int] | None = None,
                 layers: list[dict[str, str | bytes]] | None = None, **kwargs: object) -> CustomRuntime:
    tag = uuid.uuid4().hex[:8]
    task = write_files(tmp_path / f"task-{tag}", files)
    for name, mode in {"bootstrap": 0o755, **(modes or {})}.items():
        if (task / name).exists():
            (task / name).chmod(mode)
    layer_dirs = []
    for i, layer in enumerate(layers or []):
        d = write_files(tmp_path / f"layer-{tag}-{i}", layer)
        if (d / "bootstrap").exists():
            (d / "bootstrap").chmod(0o755)
        layer_dirs.append(d)
    tmp = tmp_path / f"tmp-{tag}"
    tmp.mkdir()
    cfg = CustomConfig(runtime="provided.al2023", handler=str(kwargs.pop("handler", "function.handler")),
                       task_root=task, tmp_dir=tmp, function_name="fn", log_group="/aws/lambda/fn",
                       log_stream="s", layer_dirs=tuple(layer_dirs), **kwargs)  # type: ignore[arg-type]
    return CustomRuntime(cfg)


async def test_bash_bootstrap_from_the_tutorial(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, {"bootstrap": BASH_BOOTSTRAP, "function.sh": BASH_FUNCTION})
    try:
        init = await rt.start(10.0)
        assert init.ok and init.init_ms > 0
        pid = rt.pid
        for n in range(3):  # row 37: one process, reused
            out = await rt.invoke(f"r{n}", json.dumps({"n": n}).encode(), invoked_arn=ARN, timeout_s=5)
            assert out.kind is Kind.OK and out.payload == f"Echoing request: '{{\"n\": {n}}}'".encode()
            assert f'{{"n": {n}}}' in out.output.decode() and rt.pid == pid
    finally:
        await rt.stop(graceful=True)
    assert rt.proc is not None and not rt.proc.alive


def _vendor_awslambdaric(dest: Path) -> None:
    """What ``pip install --target <package> awslambdaric`` puts in a function package, copied from this venv's
    install (the project's test extras): no registry at test time."""
    site = Path(sysconfig.get_paths()["purelib"])
    for top in ("awslambdaric", "simplejson", "snapshot_restore_py"):
        src = site / top
        if src.is_dir():
            shutil.copytree(src, dest / top)
        else:
            shutil.copy2(site / f"{top}.py", dest / f"{top}.py")
    for so in site.glob("runtime_client*.so"):
        shutil.copy2(so, dest / so.name)


async def test_awslambdaric_runs_unmodified(tmp_path: Path) -> None:
    """Row 43: ``python -m awslambdaric app.handler`` with the client vendored in the package (``-S``: the venv's
    site-packages are not on its path, so it really is the package's copy)."""
    files = {
        "bootstrap": f"#!/bin/sh\nexec {sys.executable} -S -m awslambdaric app.handler\n",
        "app.py": ("import logging, os\ncount = 0\n"
                   "def handler(event, context):\n    global count\n    count += 1\n"
                   "    if event.get('fail'):\n        raise ValueError('bad thing')\n"
                   "    print('printed', event)\n    logging.getLogger().warning('warned')\n"
                   "    return {'count': count, 'id': context.aws_request_id, 'mem': context.memory_limit_in_mb,\n"
                   "            'left': context.get_remaining_time_in_millis(), 'arn': context.invoked_function_arn,\n"
                   "            'trace': os.environ.get('_X_AMZN_TRACE_ID', '')}\n"),
    }
    rt = make_runtime(tmp_path, files)
    _vendor_awslambdaric(rt.cfg.task_root)
    try:
        init = await rt.start(10.0)
        assert init.ok, init
        first = await rt.invoke("req-1", b'{"a": 1}', invoked_arn=ARN, timeout_s=3)
        body = json.loads(first.payload)
        assert first.kind is Kind.OK and body["count"] == 1 and body["id"] == "req-1" and body["mem"] == "128"
        assert 1000 < body["left"] <= 3000 and body["arn"] == ARN and body["trace"].startswith("Root=1-")
        text = first.output.decode()
        assert "printed {'a': 1}" in text and "[WARNING]\t" in text and "\treq-1\twarned" in text
        err = await rt.invoke("req-2", b'{"fail": true}', invoked_arn=ARN, timeout_s=3)
        rec = json.loads(err.payload)
        assert err.kind is Kind.ERROR and err.error_type == "ValueError" and not err.reset
        assert (rec["errorType"], rec["errorMessage"], rec["requestId"]) == ("ValueError", "bad thing", "req-2")
        again = await rt.invoke("req-3", b"{}", invoked_arn=ARN, timeout_s=3)
        assert json.loads(again.payload)["count"] == 3  # the same process after a handler error
    finally:
        await rt.stop(graceful=True)


async def test_awslambdaric_init_error(tmp_path: Path) -> None:
    files = {"bootstrap": f"#!/bin/sh\nexec {sys.executable} -S -m awslambdaric missing.handler\n"}
    rt = make_runtime(tmp_path, files)
    _vendor_awslambdaric(rt.cfg.task_root)
    try:
        init = await rt.start(10.0)
        assert not init.ok and init.failure and init.failure.kind is Kind.INIT_ERROR
        assert init.failure.error_type == "Runtime.ImportModuleError"
        assert json.loads(init.failure.payload)["errorMessage"].startswith("Unable to import module 'missing'")
    finally:
        await rt.stop(graceful=False)


@pytest.mark.parametrize(("files", "modes", "message"), [
    ({"function.sh": ""}, {}, "Couldn't find valid bootstrap(s): [{task}/bootstrap]"),
    ({"bootstrap": "#!/bin/sh\necho hi\n"}, {"bootstrap": 0o644}, "fork/exec {task}/bootstrap: permission denied"),
    ({"bootstrap": "#!/bin/sh\r\necho hi\r\n"}, {}, "fork/exec {task}/bootstrap: no such file or directory"),
])
async def test_invalid_entrypoints(tmp_path: Path, files: dict[str, str], modes: dict[str, int], message: str) -> None:
    rt = make_runtime(tmp_path, files, modes=modes)  # row 38
    init = await rt.start(5.0, request_id="rid")
    assert not init.ok and init.failure and init.failure.error_type == "Runtime.InvalidEntrypoint"
    assert json.loads(init.failure.payload) == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": "RequestId: rid Error: " + message.format(task=rt.cfg.task_root)}
    assert rt.proc is None
    await rt.stop(graceful=False)


async def test_bootstrap_from_a_layer(tmp_path: Path) -> None:
    boot = py_bootstrap("while True:\n    s, h, b = api('GET', '/invocation/next')\n"
                        "    api('POST', f\"/invocation/{h['Lambda-Runtime-Aws-Request-Id']}/response\", b'\"layer\"')\n")
    rt = make_runtime(tmp_path, {"x.txt": ""}, layers=[{"bootstrap": "#!/bin/false\n"}, {"bootstrap": boot}])
    try:
        assert (await rt.start(10.0)).ok
        assert (await rt.invoke("r", b"{}", invoked_arn=ARN, timeout_s=3)).payload == b'"layer"'
    finally:
        await rt.stop(graceful=False)


async def test_init_error_posted_by_the_runtime(tmp_path: Path) -> None:
    boot = py_bootstrap("api('POST', '/init/error', json.dumps({'errorMessage': 'no config', 'errorType': 'X.Y'}),\n"
                        "    {'Lambda-Runtime-Function-Error-Type': 'X.Y'})\n"
                        "print(api('POST', '/init/error', b'{}')[0], flush=True)\nsys.exit(1)\n")
    rt = make_runtime(tmp_path, {"bootstrap": boot})
    init = await rt.start(10.0)  # row 39
    assert not init.ok and init.failure and init.failure.kind is Kind.INIT_ERROR and init.failure.error_type == "X.Y"
    assert json.loads(init.failure.payload) == {"errorMessage": "no config", "errorType": "X.Y"}
    await rt.stop(graceful=False)


async def test_protocol_errors_and_limits(tmp_path: Path) -> None:
    """Row 41: a second answer gets 403, a wrong id 400, a body over 6,291,556 bytes 413 (and the caller
    ``Function.ResponseSizeTooLarge``); the runtime reports what it got in its next response."""
    boot = py_bootstrap(
        "seen = []\n"
        "while True:\n"
        "    s, h, b = api('GET', '/invocation/next')\n"
        "    rid = h['Lambda-Runtime-Aws-Request-Id']\n"
        "    ev = json.loads(b)\n"
        "    if ev.get('big'):\n"
        "        seen.append(api('POST', f'/invocation/{rid}/response', b'x' * 7_000_000)[0]); continue\n"
        "    seen.append(api('POST', '/invocation/not-the-id/response', b'1')[0])\n"
        "    seen.append(api('GET', '/invocation/next')[0])\n"
        "    conn = http.client.HTTPConnection(HOST, int(PORT))\n"
        "    conn.request('POST', f'/2018-06-01/runtime/invocation/{rid}/response', body=iter([json.dumps(\n"
        "        {'seen': seen, 'headers': {k: v for k, v in h.items() if k.startswith('Lambda')}}).encode()]),\n"
        "        encode_chunked=True)\n"
        "    conn.getresponse().read()\n"
        "    seen = [api('POST', f'/invocation/{rid}/response', b'2')[0], api('POST', '/init/error', b'{}')[0],\n"
        "            api('GET', '/nope')[0]]\n")
    rt = make_runtime(tmp_path, {"bootstrap": boot})
    try:
        assert (await rt.start(10.0)).ok
        out = await rt.invoke("r1", b"{}", invoked_arn=ARN, timeout_s=5, client_context='{"custom": {"k": 1}}')
        body = json.loads(out.payload)
        assert body["seen"] == [400, 403]
        h = body["headers"]
        assert h["Lambda-Runtime-Aws-Request-Id"] == "r1" and h["Lambda-Runtime-Invoked-Function-Arn"] == ARN
        assert int(h["Lambda-Runtime-Deadline-Ms"]) > 0 and h["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
        assert json.loads(h["Lambda-Runtime-Client-Context"]) == {"custom": {"k": 1}}
        big = await rt.invoke("r2", b'{"big": true}', invoked_arn=ARN, timeout_s=5)
        assert big.kind is Kind.ERROR and big.reset and big.error_type == "Function.ResponseSizeTooLarge"
    finally:
        await rt.stop(graceful=False)
    rt2 = make_runtime(tmp_path, {"bootstrap": boot})
    try:
        assert (await rt2.start(10.0)).ok
        await rt2.invoke("a", b"{}", invoked_arn=ARN, timeout_s=5)
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        out = await rt2.invoke("b", b"{}", invoked_arn=ARN, timeout_s=5, trace=trace)
        assert json.loads(out.payload)["seen"] == [403, 403, 404, 400, 403]  # after "a": 2nd answer, init/error, 404
        assert json.loads(out.payload)["headers"]["Lambda-Runtime-Trace-Id"] == trace  # the invocation's own
    finally:
        await rt2.stop(graceful=False)


async def test_environment_of_a_custom_runtime(tmp_path: Path) -> None:
    boot = py_bootstrap("while True:\n    s, h, b = api('GET', '/invocation/next')\n"
                        "    api('POST', f\"/invocation/{h['Lambda-Runtime-Aws-Request-Id']}/response\",\n"
                        "        json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))\n")
    rt = make_runtime(tmp_path, {"bootstrap": boot}, handler="my.handler", environment=(("USER_VAR", "u"),))
    try:
        assert (await rt.start(10.0)).ok
        got = json.loads((await rt.invoke("r", b"{}", invoked_arn=ARN, timeout_s=3)).payload)
        env = got["env"]  # row 42
        assert env["_HANDLER"] == "my.handler" and env["USER_VAR"] == "u" and got["cwd"] == env["LAMBDA_TASK_ROOT"]
        assert env["AWS_LAMBDA_RUNTIME_API"] == f"127.0.0.1:{rt.api.port}"
        assert "AWS_EXECUTION_ENV" not in env and "NODE_PATH" not in env and "EDGELAB_PARENT_PID" not in env
    finally:
        await rt.stop(graceful=False)


async def test_exit_mid_invoke_timeout_and_restart_outcomes(tmp_path: Path) -> None:
    boot = py_bootstrap("import time\nwhile True:\n    s, h, b = api('GET', '/invocation/next')\n"
                        "    ev = json.loads(b)\n"
                        "    if ev.get('exit') is not None:\n        sys.exit(ev['exit'])\n"
                        "    time.sleep(30)\n")
    rt = make_runtime(tmp_path, {"bootstrap": boot})
    try:
        assert (await rt.start(10.0)).ok
        out = await rt.invoke("e", b'{"exit": 2}', invoked_arn=ARN, timeout_s=5)  # row 40
        assert out.kind is Kind.EXIT and out.reset
        assert json.loads(out.payload)["errorMessage"] == "RequestId: e Error: Runtime exited with error: exit status 2"
        stale = await rt.invoke("s", b"{}", invoked_arn=ARN, timeout_s=5)
        assert stale.kind is Kind.STALE  # dead while idle: never sent
    finally:
        await rt.stop(graceful=False)
    rt = make_runtime(tmp_path, {"bootstrap": boot})
    try:
        assert (await rt.start(10.0)).ok
        pgid = rt.pid
        out = await rt.invoke("t", b"{}", invoked_arn=ARN, timeout_s=1)
        assert out.kind is Kind.TIMEOUT and json.loads(out.payload)["errorMessage"].endswith("after 1.00 seconds")
        assert rt.proc is not None and not rt.proc.alive
        from tests.invocation.execution.test_node_process import wait_group_gone
        assert await wait_group_gone(pgid)
    finally:
        await rt.stop(graceful=False)


async def test_exit_during_init(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, {"bootstrap": "#!/bin/sh\necho starting\nexit 0\n"})
    init = await rt.start(10.0, request_id="i")
    assert not init.ok and init.failure and init.failure.kind is Kind.EXIT
    assert json.loads(init.failure.payload)["errorMessage"] == "RequestId: i Error: Runtime exited without providing a reason"
    assert init.failure.output == b"starting\n"
    await rt.stop(graceful=False)


def test_error_payload_shapes() -> None:
    assert error_payload(b'{"errorMessage": "m", "errorType": "T"}', None) == (b'{"errorMessage": "m", "errorType": "T"}', "T")
    assert error_payload(b'{"errorMessage": "m"}', "H") == (b'{"errorType":"H","errorMessage":"m"}', "H")
    assert error_payload(b"plain text", None) == (b'{"errorType":"Unhandled","errorMessage":"plain text"}', "Unhandled")


def test_curl_is_available() -> None:
    """The tutorial bootstrap needs curl (the Debian image the project runs on has it)."""
    assert shutil.which("curl"), "curl is needed by the bash bootstrap test (apt-get install curl)"
    assert http.client.HTTPConnection  # stdlib client used by the Python bootstraps
