"""TracingConfig and X-Amzn-Trace-Id: the header of an Invoke call or a function URL request reaches the function
as ``_X_AMZN_TRACE_ID``; Active tracing without one starts a sampled trace; nothing leaks between invocations."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from edge.invocation import zip_files

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CODE = zip_files({"app.py": "import os\n\ndef handler(e, c):\n    return {'trace': os.environ.get('_X_AMZN_TRACE_ID')}\n"})
HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def invoke(api: Any, name: str, trace: str | None = None) -> Any:
    headers = {"X-Amzn-Trace-Id": trace} if trace else {}
    req = urllib.request.Request(f"{api.url}/2015-03-31/functions/{name}/invocations", data=b"{}", method="POST",
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["trace"]


def test_trace_header_reaches_the_function(lambda_api_factory: Any, tmp_path: Path) -> None:
    from edge.invocation import Executor, ExecutorSettings

    state = tmp_path / "state"
    api = lambda_api_factory(state, executor_factory=lambda: Executor(ExecutorSettings(state_dir=state)))
    lam = api.client()
    for name, mode in (("pass", "PassThrough"), ("active", "Active")):
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": CODE}, TracingConfig={"Mode": mode})
    assert invoke(api, "pass", HEADER) == HEADER
    assert invoke(api, "pass") is None  # the same warm environment: the previous trace does not leak
    assert invoke(api, "active", HEADER) == HEADER
    started = invoke(api, "active")
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1", started), started
    assert invoke(api, "active") != started  # a new trace per invocation
    url = lam.create_function_url_config(FunctionName="pass", AuthType="NONE")["FunctionUrl"]
    host = url.split("//", 1)[1].split("/", 1)[0]
    req = urllib.request.Request(f"{api.url}/", headers={"Host": host, "X-Amzn-Trace-Id": HEADER})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read())["trace"] == HEADER
