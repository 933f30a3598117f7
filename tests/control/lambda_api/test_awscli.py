"""awscli smoke test against the Lambda REST API (awscli comes with the test extras, next to the venv's python)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge.invocation import zip_files as build_zip

# the venv's own awscli (test extras), never one a user installed on the machine by hand
AWS = str(Path(sys.executable).with_name("aws"))


def aws(api: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    cmd = [AWS, "--endpoint-url", api.url, "--output", "json", "lambda", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_awscli_create_invoke_and_errors(lambda_api_factory: Any, tmp_path: Path) -> None:
    from edge.invocation import Executor, ExecutorSettings

    state = tmp_path / "state"
    api = lambda_api_factory(state, executor_factory=lambda: Executor(ExecutorSettings(state_dir=state)))
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(build_zip({"app.py": "def handler(event, context):\n    return {'got': event}\n"}))
    created = aws(api, tmp_path, "create-function", "--function-name", "cli-fn", "--runtime", "python3.12",
                  "--role", "arn:aws:iam::000000000000:role/r", "--handler", "app.handler",
                  "--zip-file", f"fileb://{zip_path}")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["FunctionName"] == "cli-fn"
    waited = aws(api, tmp_path, "wait", "function-active-v2", "--function-name", "cli-fn")
    assert waited.returncode == 0, waited.stderr
    listed = aws(api, tmp_path, "list-functions")
    assert [f["FunctionName"] for f in json.loads(listed.stdout)["Functions"]] == ["cli-fn"]
    out = tmp_path / "out.json"
    invoked = aws(api, tmp_path, "invoke", "--function-name", "cli-fn", "--payload", '{"k": 1}', str(out))
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    assert json.loads(out.read_text()) == {"got": {"k": 1}}
    missing = aws(api, tmp_path, "get-function", "--function-name", "nope")
    assert missing.returncode == 255
    assert "An error occurred (ResourceNotFoundException) when calling the GetFunction operation: Function not found" in missing.stderr
