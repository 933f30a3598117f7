"""The Node.js shim (edge/invocation/runtime/node/shim.cjs) with real ``node`` processes of every major, over the
real frame protocol (edge.invocation.runtime.protocol). Rows refer to the test matrix of runtimes.md §6.

One raw test drives the socketpair with ``protocol.encode``/``decode`` by hand; the others go through
:class:`NodeProcess` (which uses the same functions) to keep them short."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from edge.invocation.execution.environment import Kind
from edge.invocation.runtime import logformat, protocol
from edge.invocation.runtime.node import K_HELLO, K_INIT, SHIM
from tests.invocation.fixtures.node_support import GEN3, MAJORS, NodeFn, dist, lines, log_fields, payload

pytestmark = pytest.mark.timeout(60)

ASYNC_COUNTER = "let n = 0;\nexports.handler = async (event) => ({ n: ++n, event });\n"


# -- the wire ----------------------------------------------------------------------------------------------------
def _recv_frame(sock: socket.socket) -> tuple[dict, bytes, bytes]:
    buf = b""
    while len(buf) < protocol.HEADER_SIZE or len(buf) < protocol.frame_size(buf):
        chunk = sock.recv(65536)
        assert chunk, "the shim closed the channel"
        buf += chunk
    assert len(buf) == protocol.frame_size(buf)
    return protocol.decode(buf)


def test_raw_frames_over_a_socketpair(tmp_path: Path) -> None:
    """HELLO, INIT -> READY (with the Init output), INVOKE -> RESULT, EOF -> exit 0: the bytes of protocol.py."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.js").write_text("console.log('loaded');\n" + ASYNC_COUNTER)
    out = os.memfd_create("out")
    core, child = socket.socketpair()
    d = dist(20)
    proc = subprocess.Popen([str(d.binary), str(SHIM), str(child.fileno())], pass_fds=(child.fileno(),),
                            stdout=out, stderr=out, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    child.close()
    try:
        core.settimeout(20)
        hello, _, _ = _recv_frame(core)
        assert hello["t"] == K_HELLO and hello["pid"] == proc.pid and hello["v"] == f"v{d.version}"
        cfg = {"t": K_INIT, "env": {"AWS_LAMBDA_FUNCTION_VERSION": "7"}, "task_root": str(code),
               "handler": "index.handler", "runtime": "nodejs20.x", "memory_mb": 128, "tmp": str(tmp_path),
               "tmp_quota_mb": 0}
        core.sendall(b"".join(protocol.encode(cfg)))
        ready, body, log = _recv_frame(core)
        assert ready["t"] == protocol.K_READY and ready["rss"] > 10_000 and ready["im"] > 0
        assert log.decode().endswith("\tundefined\tINFO\tloaded\n")
        for n in (1, 2):
            core.sendall(b"".join(protocol.encode({"t": protocol.K_INVOKE, "id": f"r{n}", "dl": 2**42, "arn": "a",
                                                   "cc": None, "fn": None}, b'{"k": [1]}')))
            meta, body, log = _recv_frame(core)
            assert meta["t"] == protocol.K_RESULT and meta["d"] > 0 and meta["rss"] > 10_000
            assert json.loads(body) == {"n": n, "event": {"k": [1]}} and log == b""
        core.shutdown(socket.SHUT_WR)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        core.close()
        os.close(out)


async def test_log_record_matches_the_python_formatter(tmp_path: Path) -> None:
    """With ``lg`` the shim formats START/output/END/REPORT exactly as runtime/logformat.py does."""
    async with NodeFn(tmp_path, {"index.js": "exports.handler = async () => { console.log('x\\ny'); return 1; };"}) as fn:
        assert fn.proc is not None
        out = await fn.proc.invoke("rid-1", b"{}", invoked_arn="arn", timeout_s=3, log=(["INIT_START z"], 12.125))
        ts, rid, msgs = logformat.decode_record(out.record or b"")
        assert rid == "rid-1" and abs(ts - __import__("time").time() * 1000) < 60_000
        used = logformat.max_memory_used_mb(128, out.max_rss_kb)
        assert msgs[0] == "INIT_START z" and msgs[1] == logformat.start_line("rid-1", "$LATEST")
        assert msgs[2].split("\t")[1:] == ["rid-1", "INFO", "x\ry"]
        assert msgs[3:] == [logformat.end_line("rid-1"),
                            logformat.report_line("rid-1", out.duration_ms, 128, used, 12.125)]
        assert "Init Duration: 12.12 ms" in msgs[4]  # Python's round-half-even on the exact binary value


# -- handler styles (rows 1-14) -------------------------------------------------------------------------------------
@pytest.mark.parametrize("major", MAJORS)
async def test_async_handler_stays_warm(tmp_path: Path, major: int) -> None:
    async with NodeFn(tmp_path, {"index.js": ASYNC_COUNTER + "exports.none = async () => {};"}, major=major) as fn:
        assert fn.init and fn.init.ok
        assert payload(await fn.invoke({"a": 1})) == {"n": 1, "event": {"a": 1}}
        assert payload(await fn.invoke()) == {"n": 2, "event": {}}  # empty payload -> {} (as the Python worker)
    async with NodeFn(tmp_path, {"index.js": "exports.handler = async () => {};"}, major=major) as fn:
        out = await fn.invoke({})
        assert out.kind is Kind.OK and out.payload == b"null"


@pytest.mark.parametrize("major", GEN3)
async def test_callback_handler_and_its_warning(tmp_path: Path, major: int) -> None:
    src = "exports.handler = (event, context, callback) => { callback(null, { a: 1 }); };"
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        assert fn.init and fn.init.ok
        warn = log_fields(lines(fn.init.output)[0])
        assert warn[1:3] == ["undefined", "WARN"] and "starting with Node.js 24" in warn[3]
        assert payload(await fn.invoke({})) == {"a": 1}
    async with NodeFn(tmp_path, {"index.js": src}, major=major,
                      environment={"AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING": "1"}) as fn:
        assert fn.init and fn.init.output == b""


@pytest.mark.parametrize("major", GEN3)
async def test_callback_waits_for_the_empty_event_loop(tmp_path: Path, major: int) -> None:
    src = ("exports.handler = (event, context, callback) => {\n"
           "  if (event.nowait) context.callbackWaitsForEmptyEventLoop = false;\n"
           "  setInterval(() => {}, 50);\n  callback(null, 'done');\n};\n"
           "exports.timer = (event, context, callback) => { setTimeout(() => console.log('late'), 30); callback(null, 2); };")
    async with NodeFn(tmp_path, {"index.js": src}, handler="index.timer", major=major) as fn:
        out = await fn.invoke({})
        assert payload(out) == 2 and out.duration_ms >= 25 and b"\tINFO\tlate\n" in out.output
    async with NodeFn(tmp_path, {"index.js": src}, major=major, timeout_s=1.0) as fn:
        assert payload(await fn.invoke({"nowait": True})) == "done"
        out = await fn.invoke({})  # the interval never lets the loop drain: row 4
        assert out.kind is Kind.TIMEOUT and out.reset
        assert payload(out)["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
        assert fn.proc and not fn.proc.proc.alive  # type: ignore[union-attr]


@pytest.mark.parametrize("major", MAJORS)
async def test_sync_return_value(tmp_path: Path, major: int) -> None:
    async with NodeFn(tmp_path, {"index.js": "exports.handler = (event) => ({ a: 1 });"}, major=major) as fn:
        out = await fn.invoke({})
        assert out.kind is Kind.OK
        assert payload(out) == ({"a": 1} if major >= 24 else None)  # row 6


@pytest.mark.parametrize("src", ["exports.handler = (e, c, cb) => cb(null, 1);",
                                 "exports.handler = async (e, c, cb) => 1;"])
async def test_node24_refuses_callback_handlers(tmp_path: Path, src: str) -> None:
    async with NodeFn(tmp_path, {"index.js": src}, major=24) as fn:
        assert fn.init and not fn.init.ok and fn.init.failure
        rec = json.loads(fn.init.failure.payload)
        assert rec["errorType"] == "Runtime.CallbackHandlerDeprecated"
        assert "starting with Node.js 24" in rec["errorMessage"] and rec["trace"][0].startswith("Runtime.Callback")
        err = log_fields(lines(fn.init.output)[-1])
        assert err[1:3] == ["undefined", "ERROR"] and err[3].startswith("Init Error \t{")
        assert await fn.proc.proc.wait(5) is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("major", GEN3)
async def test_context_succeed_fail_done(tmp_path: Path, major: int) -> None:
    src = ("exports.handler = (event, context) => {\n"
           "  if (event.op === 'succeed') context.succeed({ x: 1 });\n"
           "  else if (event.op === 'fail') context.fail();\n"
           "  else { context.done(null, 'first'); context.succeed('second'); }\n};")
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        assert payload(await fn.invoke({"op": "succeed"})) == {"x": 1}
        out = await fn.invoke({"op": "fail"})
        assert out.kind is Kind.ERROR and not out.reset
        assert payload(out) == {"errorType": "string", "errorMessage": "handled", "trace": []}
        assert "\tERROR\tInvoke Error \t" in out.output.decode()
        assert payload(await fn.invoke({"op": "done"})) == "first"


@pytest.mark.parametrize("major", MAJORS)
async def test_thrown_errors_have_nodes_shape(tmp_path: Path, major: int) -> None:
    src = ("class MyErr extends Error {}\n"
           "exports.handler = async (event) => {\n"
           "  if (event.kind === 'error') throw new Error('boom');\n"
           "  if (event.kind === 'sub') throw new MyErr('sub');\n"
           "  if (event.kind === 'named') { const e = new Error('n'); e.name = 'Custom'; throw e; }\n"
           "  if (event.kind === 'reject') return Promise.reject();\n"
           "  throw event.value;\n};")
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        out = await fn.invoke({"kind": "error"})
        rec = payload(out)
        assert out.kind is Kind.ERROR and out.error_type == "Error" and not out.reset
        assert list(rec) == ["errorType", "errorMessage", "trace"]  # no requestId, "trace" (row 9)
        assert rec["errorMessage"] == "boom" and rec["trace"][0] == "Error: boom" and "index.js" in rec["trace"][1]
        logged = log_fields(lines(out.output)[-1])
        assert logged[2] == "ERROR" and logged[3].startswith("Invoke Error \t")
        assert json.loads(logged[3].split("\t", 1)[1])["stack"][0] == "Error: boom"  # "stack" in the log
        assert payload(await fn.invoke({"kind": "sub"}))["errorType"] == "Error"  # row 10
        assert payload(await fn.invoke({"kind": "named"}))["errorType"] == "Custom"
        for value, etype, msg in (("x", "string", "x"), (42, "number", "42"), ({}, "object", "[object Object]")):
            assert payload(await fn.invoke({"value": value})) == {"errorType": etype, "errorMessage": msg,
                                                                  "trace": []}  # row 11
        rejected = payload(await fn.invoke({"kind": "reject"}))  # row 12
        assert (rejected["errorType"], rejected["errorMessage"]) == (
            ("undefined", "undefined") if major >= 24 else ("string", "handled"))
        assert payload(await fn.invoke({"kind": "error"}))["errorMessage"] == "boom"  # still the same process


@pytest.mark.parametrize("major", MAJORS)
async def test_unhandled_rejection_during_invoke(tmp_path: Path, major: int) -> None:
    src = ("exports.handler = async () => { Promise.reject(new Error('lost')); "
           "await new Promise((r) => setTimeout(r, 50)); return 1; };")
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        out = await fn.invoke({})
        assert out.reset
        if major >= 24:  # RIC 4.x installs no handler: Node's default prints the error and exits 1
            assert out.kind is Kind.EXIT and payload(out)["errorMessage"].endswith("exit status 1")
            assert b"lost" in out.output
        else:  # row 13
            rec = payload(out)
            assert out.kind is Kind.ERROR and rec["errorType"] == "Runtime.UnhandledPromiseRejection"
            assert rec["errorMessage"] == "Error: lost"
            assert rec["trace"][0] == "Runtime.UnhandledPromiseRejection: Error: lost"
            assert "\tERROR\tUnhandled Promise Rejection \t{" in out.output.decode()
            assert await fn.proc.proc.wait(5) == 128 << 8  # type: ignore[union-attr]


@pytest.mark.parametrize("major", GEN3)
async def test_rejection_after_the_response(tmp_path: Path, major: int) -> None:
    src = "exports.handler = async () => { setTimeout(() => Promise.reject(new Error('later')), 20); return 'ok'; };"
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        out = await fn.invoke({})
        assert out.kind is Kind.OK and payload(out) == "ok"  # row 14: the invocation succeeds...
        assert await fn.proc.proc.wait(5) == 128 << 8  # type: ignore[union-attr]  # ...and the runtime exits


@pytest.mark.parametrize("major", GEN3)
async def test_async_promise_never_settled(tmp_path: Path, major: int) -> None:
    async with NodeFn(tmp_path, {"index.js": "exports.handler = async () => new Promise(() => {});"},
                      major=major) as fn:
        out = await fn.invoke({})
        assert out.kind is Kind.ERROR and out.error_type == "Runtime.NodeJsExit" and not out.reset
        assert payload(await fn.invoke({}))["errorType"] == "Runtime.NodeJsExit"  # still serving


# -- Init (rows 15-19) --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("major", MAJORS)
async def test_init_failures(tmp_path: Path, major: int) -> None:
    files = {"index.js": ASYNC_COUNTER + "exports.notfn = 42;", "boom.js": "throw new TypeError('at load');",
             "missing.js": "require('nope-not-here');", "bad.js": "exports.handler = async () => { return .; };"}
    cases = [
        ("nope.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nope'"),
        ("missing.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nope-not-here'"),
        ("index.other", "Runtime.HandlerNotFound", "index.other is undefined or not exported"),
        ("index.notfn", "Runtime.HandlerNotFound", "index.notfn is not a function"),
        ("nodot", "Runtime.MalformedHandlerName", "Bad handler"),
        ("../x.h", "Runtime.MalformedHandlerName", "'../x.h' is not a valid handler name. Use absolute paths when "
                                                   "specifying root directories in handler names."),
        ("bad.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token"),
        ("boom.handler", "TypeError", "at load"),
    ]
    for handler, etype, message in cases:
        async with NodeFn(tmp_path, files, handler=handler, major=major) as fn:
            assert fn.init and not fn.init.ok and fn.init.failure and fn.init.failure.kind is Kind.INIT_ERROR
            rec = json.loads(fn.init.failure.payload)
            assert rec["errorType"] == etype, (handler, rec)
            assert rec["errorMessage"].startswith(message), (handler, rec)
            assert isinstance(rec["trace"], list) and "requestId" not in rec
            label = "Init Error" if major >= 24 else "Uncaught Exception"
            logged = log_fields(lines(fn.init.output)[-1])
            assert logged[1:3] == ["undefined", "ERROR"] and logged[3].startswith(f"{label} \t{{")
            assert await fn.proc.proc.wait(5) == (1 if major >= 24 else 129) << 8  # type: ignore[union-attr]


@pytest.mark.parametrize("major", MAJORS)
async def test_module_kinds_and_handler_paths(tmp_path: Path, major: int) -> None:
    files = {
        "esm.mjs": "const v = await Promise.resolve('mjs'); export const handler = async () => v;",
        "cjs.cjs": "exports.handler = async () => 'cjs';",
        "plain.js": "exports.handler = async () => 'js';",
        "extless": "exports.handler = async () => 'extensionless';",
        "mod/package.json": '{"type": "module"}',
        "mod/typed.js": "export const handler = async () => 'type-module';",
        "h.js": "exports.run = async () => 'from-root';",
        "nested.js": "exports.a = { b: { handler: async () => 'nested' } };",
    }
    expected = {"esm.handler": "mjs", "cjs.handler": "cjs", "plain.handler": "js", "extless.handler": "extensionless",
                "mod/typed.handler": "type-module", "lib/h.run": "from-root", "nested.a.b.handler": "nested"}
    for handler, value in expected.items():
        async with NodeFn(tmp_path, files, handler=handler, major=major) as fn:
            assert fn.init and fn.init.ok, (handler, fn.init)
            assert payload(await fn.invoke({})) == value


async def test_esm_syntax_in_a_commonjs_file(tmp_path: Path) -> None:
    async with NodeFn(tmp_path, {"index.js": "export const handler = async () => 1;"}, major=20) as fn:
        assert fn.init and fn.init.failure
        rec = json.loads(fn.init.failure.payload)
        assert rec["errorType"] == "Runtime.UserCodeSyntaxError"
        assert "Cannot use import statement outside a module" in rec["errorMessage"] or "export" in rec["errorMessage"]


async def test_top_level_await_counts_toward_init(tmp_path: Path) -> None:
    src = "await new Promise((r) => setTimeout(r, 300));\nexport const handler = async () => 'ready';"
    async with NodeFn(tmp_path, {"index.mjs": src}, major=20) as fn:
        assert fn.init and fn.init.ok
        assert fn.init.function_init_ms is not None and fn.init.function_init_ms >= 300  # row 19
        assert fn.init.init_ms >= 300
        assert payload(await fn.invoke({})) == "ready"


# -- context, environment, layers (rows 24, 26-28) -----------------------------------------------------------------
@pytest.mark.parametrize("major", [20, 24])
async def test_context_and_environment(tmp_path: Path, major: int) -> None:
    src = ("exports.handler = async (event, context) => ({\n"
           "  keys: Object.keys(JSON.parse(JSON.stringify(context))), remaining: context.getRemainingTimeInMillis(),\n"
           "  mem: context.memoryLimitInMB, name: context.functionName, arn: context.invokedFunctionArn,\n"
           "  id: context.awsRequestId, env: process.env, cwd: process.cwd(), tz: new Date(0).getTimezoneOffset(),\n"
           "  awslambda: typeof awslambda.streamifyResponse, tmp: require('os').tmpdir(),\n"
           "  lastNodePath: require('fs').realpathSync(process.env.NODE_PATH.split(':').pop()) });")
    async with NodeFn(tmp_path, {"index.js": src}, major=major, timeout_s=3.0,
                      environment={"MY_VAR": "v", "TZ": "Europe/Paris"}) as fn:
        out = payload(await fn.invoke({}, request_id="req-42"))
        if major >= 24:
            assert out["keys"] == ["invokedFunctionArn", "awsRequestId", "functionName", "functionVersion",
                                   "memoryLimitInMB", "logGroupName", "logStreamName"]
        else:  # the key order AWS recorded for JSON.stringify(context) (lambda-core-reference.md 3.1)
            assert out["keys"] == ["callbackWaitsForEmptyEventLoop", "functionVersion", "functionName",
                                   "memoryLimitInMB", "logGroupName", "logStreamName", "invokedFunctionArn",
                                   "awsRequestId"]
        assert 1000 < out["remaining"] <= 3000 and out["mem"] == "128" and out["id"] == "req-42"
        env = out["env"]
        assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_nodejs{major}.x" and env["MY_VAR"] == "v"
        assert env["TZ"] == ":UTC" and out["tz"] == 0  # reserved: the user's TZ does not win
        assert env["LAMBDA_TASK_ROOT"] == out["cwd"] and env["_HANDLER"] == "index.handler"
        assert "_X_AMZN_TRACE_ID" not in env and "EDGELAB_PARENT_PID" not in env
        parts = env["NODE_PATH"].split(":")  # the process's slot: its task entry links to the task root
        assert out["lastNodePath"] == out["cwd"] and parts[-2].endswith("runtime/node")
        assert parts[0].endswith(f"/opt4/nodejs/node{major}/node_modules")
        assert env["PATH"].split(":")[0] == str(dist(major).binary.parent)
        assert out["tmp"] == env["TMPDIR"] and out["awslambda"] == "function"


@pytest.mark.parametrize("major", MAJORS)
async def test_layers_on_node_path(tmp_path: Path, major: int) -> None:
    cjs_pkg = {"nodejs/node_modules/cjs-pkg/package.json": '{"name": "cjs-pkg", "main": "index.js"}',
               "nodejs/node_modules/cjs-pkg/index.js": "exports.hello = () => 'cjs-from-layer';"}
    esm_pkg = {"nodejs/node_modules/esm-pkg/package.json": '{"name": "esm-pkg", "type": "module", '
                                                           '"exports": "./index.js"}',
               "nodejs/node_modules/esm-pkg/index.js": "export const hello = () => 'esm-from-layer';"}
    override = {f"nodejs/node{major}/node_modules/cjs-pkg/index.js": "exports.hello = () => 'versioned-folder';",
                f"nodejs/node{major}/node_modules/cjs-pkg/package.json": '{"name": "cjs-pkg"}'}
    files = {"index.js": "exports.handler = async () => require('cjs-pkg').hello();",
             "esm.mjs": "import { hello } from 'esm-pkg';\nimport cjs from 'cjs-pkg';\n"
                        "export const handler = async () => [hello(), cjs.hello()];",
             "req.js": "const p = require('esm-pkg');\nexports.handler = async () => p.hello();"}
    async with NodeFn(tmp_path, files, major=major, layers=[cjs_pkg, esm_pkg]) as fn:
        assert payload(await fn.invoke({})) == "cjs-from-layer"  # row 27
    async with NodeFn(tmp_path, files, handler="esm.handler", major=major, layers=[cjs_pkg, esm_pkg]) as fn:
        assert fn.init and fn.init.ok, fn.init
        assert payload(await fn.invoke({})) == ["esm-from-layer", "cjs-from-layer"]  # row 28, ESM side
    async with NodeFn(tmp_path, files, handler="req.handler", major=major, layers=[esm_pkg]) as fn:
        if major in (20, 22):  # require() of ES modules disabled, as Lambda does (row 28)
            assert fn.init and fn.init.failure
            assert json.loads(fn.init.failure.payload)["errorType"] == "Error"
            assert "ERR_REQUIRE_ESM" in fn.init.output.decode()
        elif major == 24:
            assert payload(await fn.invoke({})) == "esm-from-layer"
    async with NodeFn(tmp_path, files, major=major, layers=[cjs_pkg, override]) as fn:
        assert payload(await fn.invoke({})) == "versioned-folder"  # nodejs/nodeNN first


# -- logging (rows 29-30) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("major", [18, 24])
async def test_console_text_lines(tmp_path: Path, major: int) -> None:
    src = ("exports.handler = async () => { console.log('a\\nb'); console.warn('w', 1); console.trace('t');\n"
           "  console.error(new Error('e')); console.debug('d'); console.info({ k: 1 }); console.fatal('f');\n"
           "  process.stdout.write('raw\\n'); return 1; };")
    async with NodeFn(tmp_path, {"index.js": src}, major=major) as fn:
        out = await fn.invoke({}, request_id="rid")
        got = lines(out.output)
        assert got[-1] == "raw"
        fields = [log_fields(line) for line in got[:-1]]
        assert all(f[1] == "rid" and f[0].endswith("Z") for f in fields)
        assert [f[2:] for f in fields if f[2] != "ERROR"] == [["INFO", "a\rb"], ["WARN", "w 1"], ["TRACE", "t"],
                                                              ["DEBUG", "d"], ["INFO", "{ k: 1 }"], ["FATAL", "f"]]
        err = next(f[3] for f in fields if f[2] == "ERROR")
        assert err.startswith("Error: e\r    at ")


async def test_console_json_and_log_level(tmp_path: Path) -> None:
    src = ("exports.handler = async () => { console.info('hidden'); console.warn('w', { a: 1 });\n"
           "  console.error(new TypeError('bad')); return 1; };\nconsole.error('at init');")
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}
    async with NodeFn(tmp_path, {"index.js": src}, environment=env) as fn:
        init = json.loads(lines(fn.init.output)[0])  # type: ignore[union-attr]
        assert "requestId" not in init and init["message"] == "at init" and init["level"] == "ERROR"
        out = await fn.invoke({}, request_id="rid")
        warn, err = (json.loads(line) for line in lines(out.output))
        assert list(warn) == ["timestamp", "level", "requestId", "message"]
        assert warn["message"] == "w { a: 1 }" and warn["requestId"] == "rid"
        assert err["level"] == "ERROR" and err["message"]["errorType"] == "TypeError"
        assert err["message"]["errorMessage"] == "bad" and err["message"]["stackTrace"][0] == "TypeError: bad"


# -- streaming, marshalling, size limits ---------------------------------------------------------------------------
async def test_streaming_handler_through_a_buffered_invoke(tmp_path: Path) -> None:
    src = ("exports.handler = awslambda.streamifyResponse(async (event, stream, context) => {\n"
           "  stream.write('hello '); stream.write(context.awsRequestId); stream.end(); });\n"
           "exports.unfinished = awslambda.streamifyResponse(async (event, stream) => { stream.write('x'); });")
    async with NodeFn(tmp_path, {"index.js": src}) as fn:
        out = await fn.invoke({}, request_id="r1")
        assert out.kind is Kind.OK and out.payload == b"hello r1"  # row 31: the bytes, not JSON
    async with NodeFn(tmp_path, {"index.js": src}, handler="index.unfinished") as fn:
        assert payload(await fn.invoke({}))["errorMessage"] == "Response stream is not finished."


async def test_unserializable_and_oversized_results(tmp_path: Path) -> None:
    src = ("exports.handler = async (event) => { if (event.big) return 'x'.repeat(7 * 1024 * 1024);\n"
           "  const a = {}; a.self = a; return a; };")
    async with NodeFn(tmp_path, {"index.js": src}) as fn:
        rec = payload(await fn.invoke({}))
        assert (rec["errorType"], rec["errorMessage"]) == ("Error", "Unable to stringify response body")
        out = await fn.invoke({"big": True})
        assert out.kind is Kind.ERROR and out.reset and out.error_type == "Function.ResponseSizeTooLarge"


async def test_remaining_time_is_not_clamped(tmp_path: Path) -> None:
    """Row 24: getRemainingTimeInMillis() is deadline - now, negative after the deadline (a timer left running by
    a callback handler that does not wait for the event loop reports it in the next invocation's output)."""
    src = ("exports.handler = (event, context, callback) => {\n"
           "  if (event.arm) { context.callbackWaitsForEmptyEventLoop = false;\n"
           "    setTimeout(() => console.log('left', context.getRemainingTimeInMillis()), 1300); }\n"
           "  callback(null, 'ok'); };")
    async with NodeFn(tmp_path, {"index.js": src}, timeout_s=1.0) as fn:
        assert payload(await fn.invoke({"arm": True})) == "ok"
        await __import__("asyncio").sleep(1.5)
        out = await fn.invoke({})
        left = next(line for line in lines(out.output) if "\tleft " in line)
        assert int(left.rsplit(" ", 1)[1]) < 0


def test_peak_rss_past_memory_size_sends_oom_and_kills_the_group(tmp_path: Path) -> None:
    """Without the core's RSS watch (raw channel): the shim checks its peak RSS after the invocation, as the Python
    worker does, sends K_OOM and SIGKILLs its own process group."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.js").write_text("exports.handler = async () => Buffer.alloc(120 << 20, 1).length;")
    out = os.memfd_create("out")
    core, child = socket.socketpair()
    proc = subprocess.Popen([str(dist(20).binary), str(SHIM), str(child.fileno())], pass_fds=(child.fileno(),),
                            stdout=out, stderr=out, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                            start_new_session=True)
    child.close()
    try:
        core.settimeout(20)
        assert _recv_frame(core)[0]["t"] == K_HELLO
        core.sendall(b"".join(protocol.encode({"t": K_INIT, "env": {}, "task_root": str(code), "handler":
                                               "index.handler", "runtime": "nodejs20.x", "memory_mb": 128,
                                               "tmp": str(tmp_path), "tmp_quota_mb": 0})))
        assert _recv_frame(core)[0]["t"] == protocol.K_READY
        core.sendall(b"".join(protocol.encode({"t": protocol.K_INVOKE, "id": "r", "dl": 2**42, "arn": "a",
                                               "cc": None, "fn": None}, b"{}")))
        meta, _, _ = _recv_frame(core)
        assert meta["t"] == protocol.K_OOM and meta["rss"] > 128 * 1024
        assert proc.wait(10) == -9  # SIGKILL, sent to its own group
    finally:
        proc.kill()
        proc.wait()
        core.close()
        os.close(out)
