"""Node.js and custom-runtime functions through the Lambda REST API with boto3 and the real Executor: create,
invoke, logs in the response, init errors, a layer with ``nodejs/node_modules/<package>`` (the seeds' exercise),
behaviour that differs between Node majors, function State while a Node.js major installs (Pending) or after its
install failed (Failed), and a custom runtime's bash bootstrap."""

from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.invocation import Executor, ExecutorSettings
from edge.invocation import zip_files as build_zip
from edge.invocation.execution import node_dist
from tests.invocation.execution.test_runtime_api import BASH_BOOTSTRAP, BASH_FUNCTION
from tests.invocation.fixtures.node_support import dist

pytestmark = pytest.mark.timeout(120)
ROLE = "arn:aws:iam::000000000000:role/lambda-role"

# A small package vendored by the test itself (tests never reach a registry): what `npm install` would put in a
# layer's nodejs/node_modules folder, CommonJS with a package.json "main".
PACKAGE = {
    "nodejs/node_modules/tiny-words/package.json": json.dumps({"name": "tiny-words", "version": "1.0.0",
                                                               "main": "lib/index.js"}),
    "nodejs/node_modules/tiny-words/lib/index.js": (
        "const words = ['edge', 'lambda', 'layer'];\n"
        "exports.pick = (n) => words.slice(0, n);\nexports.fromLayer = __filename;\n"),
}


@pytest.fixture
def api(lambda_api_factory: Any, tmp_path: Path) -> Any:
    state = tmp_path / "state"
    factory = lambda: Executor(ExecutorSettings(state_dir=state))  # noqa: E731 - built on the server's loop
    return lambda_api_factory(state, executor_factory=factory)


def zip_with_modes(files: dict[str, tuple[str, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, content)
    return buf.getvalue()


def invoke(client: Any, name: str, event: Any, **kwargs: Any) -> tuple[dict[str, Any], Any, str]:
    res = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail", **kwargs)
    payload = res["Payload"].read()
    return res, json.loads(payload) if payload.startswith((b"{", b"[", b'"')) or payload == b"null" else payload, \
        base64.b64decode(res["LogResult"]).decode()


def test_node_function_and_the_layer_exercise(api: Any) -> None:
    client = api.client()
    layer = client.publish_layer_version(LayerName="words", Content={"ZipFile": build_zip(PACKAGE)},
                                         CompatibleRuntimes=["nodejs20.x", "nodejs22.x"])
    src = ("const words = require('tiny-words');\n"
           "exports.handler = async (event, context) => ({ words: words.pick(event.n), from: words.fromLayer,\n"
           "  version: process.version, name: context.functionName, nodePath: process.env.NODE_PATH });")
    created = client.create_function(FunctionName="nodefn", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                                     Code={"ZipFile": build_zip({"index.js": src})},
                                     Layers=[layer["LayerVersionArn"]])
    assert created["State"] == "Active" and created["Runtime"] == "nodejs20.x"
    res, out, log = invoke(client, "nodefn", {"n": 2})
    assert res["StatusCode"] == 200 and "FunctionError" not in res, out
    assert out["words"] == ["edge", "lambda"] and out["name"] == "nodefn"
    assert out["from"].endswith("/nodejs/node_modules/tiny-words/lib/index.js")  # the layer's own copy
    assert out["version"] == f"v{dist(20).version}"
    assert f"INIT_START Runtime Version: nodejs:{dist(20).version}" in log and "Init Duration:" in log
    # ESM handler importing the same layer package by its bare name (Lambda resolves NODE_PATH for ESM too)
    esm = "import words from 'tiny-words';\nexport const handler = async () => words.pick(3);\n"
    client.create_function(FunctionName="esmfn", Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                           Code={"ZipFile": build_zip({"index.mjs": esm})}, Layers=[layer["LayerVersionArn"]])
    assert invoke(client, "esmfn", {})[1] == ["edge", "lambda", "layer"]
    # without the layer: AWS's init error, in the Invoke response and the log tail
    client.update_function_configuration(FunctionName="nodefn", Layers=[])
    res, out, log = invoke(client, "nodefn", {"n": 1})
    assert res["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.ImportModuleError"
    assert out["errorMessage"].startswith("Error: Cannot find module 'tiny-words'")
    assert "INIT_REPORT Init Duration:" in log and "Error Type: Runtime.ImportModuleError" in log


def test_node_majors_differ_as_on_aws(api: Any) -> None:
    client = api.client()
    callback = "exports.handler = (event, context, callback) => callback(null, { ok: process.version });"
    client.create_function(FunctionName="cb", Runtime="nodejs18.x", Role=ROLE, Handler="index.handler",
                           Code={"ZipFile": build_zip({"index.js": callback})})
    res, out, _ = invoke(client, "cb", {})
    assert "FunctionError" not in res and out == {"ok": f"v{dist(18).version}"}
    client.update_function_configuration(FunctionName="cb", Runtime="nodejs24.x")
    client.get_waiter("function_updated_v2").wait(FunctionName="cb")
    res, out, log = invoke(client, "cb", {})
    assert res["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.CallbackHandlerDeprecated"
    assert f"INIT_START Runtime Version: nodejs:{dist(24).version}" in log
    with pytest.raises(ClientError) as exc:  # unknown runtime: AWS's API error
        client.update_function_configuration(FunctionName="cb", Runtime="nodejs99.x")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:  # a handler with blanks breaks the API's pattern
        client.update_function_configuration(FunctionName="cb", Handler="index handler")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    client.update_function_configuration(FunctionName="cb", Handler="nodot")  # accepted: an Init error at AWS too
    client.get_waiter("function_updated_v2").wait(FunctionName="cb")
    res, out, _ = invoke(client, "cb", {})
    assert out["errorType"] == "Runtime.MalformedHandlerName"


def test_custom_runtime_bash_bootstrap(api: Any) -> None:
    client = api.client()
    code = zip_with_modes({"bootstrap": (BASH_BOOTSTRAP, 0o755), "function.sh": (BASH_FUNCTION, 0o644)})
    client.create_function(FunctionName="bash", Runtime="provided.al2023", Role=ROLE, Handler="function.handler",
                           Code={"ZipFile": code})
    res, out, log = invoke(client, "bash", {"x": 1})
    assert res["StatusCode"] == 200 and out == b"Echoing request: '{\"x\": 1}'"
    assert "INIT_START Runtime Version: provided:al2023 (" in log and "END RequestId:" in log
    client.create_function(FunctionName="nobootstrap", Runtime="provided.al2", Role=ROLE, Handler="x",
                           Code={"ZipFile": build_zip({"README": "no bootstrap here"})})
    res, out, log = invoke(client, "nobootstrap", {})
    assert res["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.InvalidEntrypoint"
    assert out["errorMessage"].startswith(f"RequestId: {res['ResponseMetadata']['RequestId']} Error: Couldn't find")


def test_state_pending_while_a_node_major_installs_then_failed(api: Any, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """No Node.js 22 on this 'machine' (an empty runtimes dir): CreateFunction answers at once with State Pending,
    invoking is AWS's ResourceConflictException, the function turns Active when the install is over. An install
    that fails leaves the function Failed with the reason and the next step."""
    monkeypatch.setenv("EDGELAB_RUNTIMES_DIR", str(tmp_path / "empty-runtimes"))
    release, failing = threading.Event(), threading.Event()
    real_ensure = node_dist.ensure

    def slow_install(major: int, root: Path | None = None) -> node_dist.NodeDist:
        assert release.wait(60)
        if failing.is_set():
            raise node_dist.NodeInstallError(f"installing Node.js {major} failed (offline?). Next step: ...")
        monkeypatch.delenv("EDGELAB_RUNTIMES_DIR")
        return real_ensure(major)

    monkeypatch.setattr(node_dist, "ensure", slow_install)
    client = api.client()
    created = client.create_function(FunctionName="later", Runtime="nodejs22.x", Role=ROLE, Handler="index.handler",
                                     Code={"ZipFile": build_zip({"index.js": "exports.handler = async () => 42;"})})
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert "Node.js 22 is being installed" in created["StateReason"]
    cfg = client.get_function_configuration(FunctionName="later")
    assert (cfg["State"], cfg["LastUpdateStatus"]) == ("Pending", "InProgress")
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="later", Payload=b"{}")
    err = exc.value.response
    assert err["Error"]["Code"] == "ResourceConflictException" and err["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert err["Error"]["Message"].startswith("The operation cannot be performed at this time. The function is "
                                              "currently in the following state: Pending")
    release.set()
    client.get_waiter("function_active_v2").wait(FunctionName="later", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert json.loads(client.invoke(FunctionName="later", Payload=b"{}")["Payload"].read()) == 42
    # a major whose install fails: Failed, with the reason, and invoking says so
    monkeypatch.setenv("EDGELAB_RUNTIMES_DIR", str(tmp_path / "empty-runtimes"))
    failing.set()
    created = client.create_function(FunctionName="never", Runtime="nodejs18.x", Role=ROLE, Handler="index.handler",
                                     Code={"ZipFile": build_zip({"index.js": "exports.handler = async () => 1;"})})
    assert created["State"] in ("Pending", "Failed")
    for _ in range(100):
        cfg = client.get_function_configuration(FunctionName="never")
        if cfg["State"] == "Failed":
            break
        threading.Event().wait(0.05)
    assert (cfg["State"], cfg["StateReasonCode"], cfg["LastUpdateStatus"]) == ("Failed", "InternalError", "Failed")
    assert "installing Node.js 18 failed" in cfg["StateReason"]
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="never", Payload=b"{}")
    assert "following state: Failed. StateReason: installing Node.js 18 failed" in exc.value.response["Error"]["Message"]
