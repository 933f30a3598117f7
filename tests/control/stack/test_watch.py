"""`edgelab serve --watch` with a user distribution and settings: editing a declared function's file republishes
it, its warm environments are retired, and the next call is a cold start running the new code."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.control.stack.test_serve import REPO, free_ports, requests, wait_until

HANDLER = '''
def handler(event, context):
    return {"status": "200", "headers": {"content-type": [{"value": "text/plain"}]}, "body": "%s"}
'''


def distribution(origin_port: int) -> dict:  # type: ignore[type-arg]
    return {"DistributionConfig": {
        "CallerReference": "watch-test", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "app.example.test",
                                              "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
                "EventType": "viewer-request",
                "LambdaFunctionARN": "arn:aws:lambda:us-east-1:000000000000:function:greeter:$LATEST"}]},
        },
    }}


@pytest.fixture
def watched_stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    fdir = tmp_path / "greeter"
    fdir.mkdir()
    (fdir / "index.py").write_text(HANDLER % "v1")
    iad, fra, nrt, api, origin = free_ports(5)
    (tmp_path / "dist.json").write_text(json.dumps(distribution(origin)))
    (tmp_path / "settings.toml").write_text(f'''
[edge]
allow_unpublished_qualifiers = true
[origins]
"app.example.test" = "127.0.0.1:{origin}"
[[functions]]
name = "greeter"
dir = "greeter"
timeout = 5
''')
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(tmp_path / "state"), "--watch",
           "--distribution", str(tmp_path / "dist.json"), "--settings", str(tmp_path / "settings.toml"),
           "--pop", f"IAD={iad}", "--pop", f"FRA={fra}", "--pop", f"NRT={nrt}", "--api-port", str(api)]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{iad}/", timeout=2).status_code == 200, 40)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise AssertionError((tmp_path / "serve.log").read_text()[-4000:]) from None
    yield fdir, iad
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    log.close()


def test_edit_republishes_and_next_call_is_cold(watched_stack) -> None:  # type: ignore[no-untyped-def]
    fdir, port = watched_stack
    url = f"http://127.0.0.1:{port}/hello"
    requests.get(url)
    warm = requests.get(url)
    assert warm.text == "v1"
    assert "greeter:$LATEST warm" in warm.headers["server-timing"]
    (fdir / "index.py").write_text(HANDLER % "v2")
    deadline = time.monotonic() + 10
    r = warm
    while time.monotonic() < deadline:
        r = requests.get(url)
        if r.text == "v2":
            break
        time.sleep(0.1)
    assert r.text == "v2", "the edited function was not picked up within 10 s"
    assert "greeter:$LATEST cold" in r.headers["server-timing"], r.headers["server-timing"]
    again = requests.get(url)
    assert "greeter:$LATEST warm" in again.headers["server-timing"]
