"""Run the venv's own AWS CLI (v1, from the test extras) against a test server, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AWS = str(Path(sys.executable).with_name("aws"))


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        **extra,
    }


def aws(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [AWS, "--endpoint-url", url, "--output", "json", *args]
    return subprocess.run(cmd, env=cli_env(tmp_path, **env), capture_output=True, text=True, timeout=60)


def aws_popen(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[Any]:
    cmd = [AWS, "--endpoint-url", url, "--output", "json", *args]
    return subprocess.Popen(cmd, env=cli_env(tmp_path, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
