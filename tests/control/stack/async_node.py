"""Run the control process (``python -m edge.control.stack.node control``) as a real subprocess for async tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlNode:
    """One control process on a free port with ``settings_toml``; ``kill9()`` / ``start()`` again."""

    def __init__(self, state_dir: Path, settings_toml: str) -> None:
        self.state_dir = state_dir
        self.settings = state_dir.parent / f"{state_dir.name}-settings.toml"
        self.settings.write_text(settings_toml)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir.parent / f"{state_dir.name}-control.log"

    def start(self, timeout: float = 30.0) -> ControlNode:
        cmd = [sys.executable, "-m", "edge.control.stack.node", "control", "--state-dir", str(self.state_dir),
               "--settings", str(self.settings), "--api-port", str(self.port), "--log-level", "WARNING"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"control node exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.admin("GET", "/health")["status"] == "ok":
                    return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise AssertionError(f"control node did not start: {self.log_path.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the whole process group (control process, zygote, workers) and reap the control process."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/edgelab/v1{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "lambda", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30, connect_timeout=5),
        )

    def messages(self, queue: str) -> list[dict[str, Any]]:
        return self.admin("GET", f"/queues/{queue}/messages?max=10000")["messages"]

    def stats(self, function: str) -> dict[str, Any]:
        return self.admin("GET", "/async")["functions"].get(function, {})


def wait_for(pred: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s (last {last!r})")
