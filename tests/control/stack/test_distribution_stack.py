"""The distribution API in a real stack (`edgelab serve`: supervisor, control process, three POP processes) against a
real origin: UpdateDistribution through boto3 takes effect in every POP within a second (measured); the AWS CLI
commands a user types (get-distribution-config, update-distribution --if-match --distribution-config file://,
create-invalidation, get-invalidation); cached objects stay across a configuration change; the --distribution file
hot-reloads (without --watch), and an invalid edit keeps the running configuration and logs the field."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.control.awscli import aws
from tests.control.stack.test_serve import REPO, free_ports, requests, wait_until
from tests.http_origin import send_text

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


class Echo(BaseHTTPRequestHandler):
    """The origin: answers which X-Version origin custom header the POP sent (the configuration in service)."""

    def do_GET(self) -> None:
        body = f"v={self.headers.get('X-Version', '-')} {self.path}".encode()
        send_text(self, body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def config(version: str, **default: Any) -> dict[str, Any]:
    return {
        "CallerReference": "stack-test", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "app", "DomainName": "app.example.test",
            "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Version", "HeaderValue": version}]},
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": CACHING_DISABLED, **default},
        "CacheBehaviors": {"Quantity": 1, "Items": [{
            "PathPattern": "/cached/*", "TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": CACHING_OPTIMIZED}]},
    }


def set_version(cfg: dict[str, Any], version: str) -> None:
    cfg["Origins"]["Items"][0]["CustomHeaders"]["Items"][0]["HeaderValue"] = version


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dist")
    origin = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=origin.serve_forever, daemon=True)
    thread.start()
    iad, fra, nrt, api = free_ports(4)
    pops = {"IAD": iad, "FRA": fra, "NRT": nrt}
    dist = tmp / "dist.json"
    dist.write_text(json.dumps({"DistributionConfig": config("file-1")}))
    (tmp / "settings.toml").write_text(f'[origins]\n"app.example.test" = "127.0.0.1:{origin.server_address[1]}"\n')
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(tmp / "state"),
           "--distribution", str(dist), "--settings", str(tmp / "settings.toml"), "--api-port", str(api)]
    for name, port in pops.items():
        cmd += ["--pop", f"{name}={port}"]
    with open(tmp / "serve.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until(lambda: requests.get(f"http://127.0.0.1:{nrt}/", timeout=2).status_code == 200, 40)
        except AssertionError:
            raise AssertionError((tmp / "serve.log").read_text()[-4000:]) from None
        yield {"pops": pops, "api": api, "tmp": tmp, "dist": dist}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        origin.shutdown()
        origin.server_close()


def client(api: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("cloudfront", endpoint_url=f"http://127.0.0.1:{api}", region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))


def body(port: int, path: str) -> str:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5).text


def wait_all(stack: dict[str, Any], path: str, expected: str, started: float, limit: float) -> float:
    """Poll every POP until it answers ``expected``; the seconds it took since ``started`` (at most ``limit``)."""
    for name, port in stack["pops"].items():
        while (got := body(port, path)) != expected:
            assert time.monotonic() - started < limit, f"{name} still answers {got!r} after {limit} s"
            time.sleep(0.01)
    return time.monotonic() - started


def test_update_distribution_takes_effect_in_every_pop_within_a_second(stack: dict[str, Any]) -> None:
    cf = client(stack["api"])
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    for version in ("api-1", "api-2"):
        got = cf.get_distribution_config(Id=dist_id)
        cfg = got["DistributionConfig"]
        set_version(cfg, version)
        started = time.monotonic()
        out = cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])
        assert out["Distribution"]["Status"] == "InProgress" and out["ETag"] != got["ETag"]
        took = wait_all(stack, "/live", f"v={version} /live", started, 1.0)
        print(f"UpdateDistribution -> every POP serves it: {took * 1000:.0f} ms")
        end = time.monotonic() + 5
        while cf.get_distribution(Id=dist_id)["Distribution"]["Status"] != "Deployed":
            assert time.monotonic() < end
            time.sleep(0.02)
    with pytest.raises(cf.exceptions.PreconditionFailed):
        cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])


def test_the_aws_cli_commands_and_the_cache_across_a_change(stack: dict[str, Any], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{stack['api']}"
    iad = stack["pops"]["IAD"]
    listed = aws(url, tmp_path, "cloudfront", "list-distributions")
    assert listed.returncode == 0, listed.stderr
    dist_id = json.loads(listed.stdout)["DistributionList"]["Items"][0]["Id"]
    got = aws(url, tmp_path, "cloudfront", "get-distribution-config", "--id", dist_id)
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    before = body(iad, "/cached/keep")  # cached under the configuration in service
    assert requests.get(f"http://127.0.0.1:{iad}/cached/keep", timeout=5).headers["x-cache"] == "Hit from cloudfront"
    set_version(doc["DistributionConfig"], "cli")
    (tmp_path / "cfg.json").write_text(json.dumps(doc["DistributionConfig"]))
    started = time.monotonic()
    updated = aws(url, tmp_path, "cloudfront", "update-distribution", "--id", dist_id, "--if-match", doc["ETag"],
                  "--distribution-config", f"file://{tmp_path / 'cfg.json'}")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["Distribution"]["Status"] == "InProgress"
    wait_all(stack, "/live", "v=cli /live", started, 5.0)  # (the CLI's own start-up is in this time)
    kept = requests.get(f"http://127.0.0.1:{iad}/cached/keep", timeout=5)
    assert (kept.text, kept.headers["x-cache"]) == (before, "Hit from cloudfront")  # the cache stays
    stale = aws(url, tmp_path, "cloudfront", "update-distribution", "--id", dist_id, "--if-match", doc["ETag"],
                "--distribution-config", f"file://{tmp_path / 'cfg.json'}")
    assert stale.returncode != 0 and "PreconditionFailed" in stale.stderr

    inv = aws(url, tmp_path, "cloudfront", "create-invalidation", "--distribution-id", dist_id,
              "--paths", "/cached/*")
    assert inv.returncode == 0, inv.stderr
    created = json.loads(inv.stdout)
    assert created["Invalidation"]["Status"] == "Completed" and created["Location"].endswith(created["Invalidation"]["Id"])
    for port in stack["pops"].values():
        fresh = requests.get(f"http://127.0.0.1:{port}/cached/keep", timeout=5)
        assert fresh.text == "v=cli /cached/keep" and fresh.headers["x-cache"] == "Miss from cloudfront"
    again = aws(url, tmp_path, "cloudfront", "get-invalidation", "--distribution-id", dist_id,
                "--id", created["Invalidation"]["Id"])
    assert again.returncode == 0 and json.loads(again.stdout)["Invalidation"]["Status"] == "Completed"
    waited = aws(url, tmp_path, "cloudfront", "wait", "distribution-deployed", "--id", dist_id)
    assert waited.returncode == 0, waited.stderr


def test_the_distribution_file_hot_reloads_and_an_invalid_edit_keeps_the_running_config(stack: dict[str, Any]) -> None:
    cf = client(stack["api"])
    before = cf.list_distributions()["DistributionList"]["Items"][0]
    dist: Path = stack["dist"]
    started = time.monotonic()
    dist.write_text(json.dumps({"DistributionConfig": config("file-2")}))
    wait_all(stack, "/live", "v=file-2 /live", started, 5.0)
    after = cf.list_distributions()["DistributionList"]["Items"][0]
    assert after["Id"] == before["Id"] and after["ETag"] != before["ETag"]  # same distribution, new version

    log = stack["tmp"] / "serve.log"
    dist.write_text(json.dumps({"DistributionConfig": config("file-3", ViewerProtocolPolicy="sometimes")}))

    def refusals() -> list[str]:
        return [x for x in log.read_text().splitlines()
                if "stays in service" in x and "DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy" in x]

    wait_until(lambda: bool(refusals()), 10)
    line = refusals()[0]
    assert str(dist) in line and "ERROR" in line and "must be allow-all, https-only or redirect-to-https" in line
    for port in stack["pops"].values():
        assert body(port, "/live") == "v=file-2 /live"
    assert cf.list_distributions()["DistributionList"]["Items"][0]["ETag"] == after["ETag"]
    started = time.monotonic()
    dist.write_text(json.dumps({"DistributionConfig": config("file-4")}))  # fixed: deployed
    wait_all(stack, "/live", "v=file-4 /live", started, 5.0)


GENERATE = b"""async function handler(event) {
  return {statusCode: 200, statusDescription: 'OK', headers: {'content-type': {value: 'text/plain'}},
          body: 'generated at ' + event.request.uri};
}"""


def test_a_cloudfront_function_associated_by_an_update_runs_in_every_pop(stack: dict[str, Any]) -> None:
    """The POPs started without CloudFront Functions (the file associates none): the update starts their runner."""
    cf = client(stack["api"])
    etag = cf.create_function(Name="gen", FunctionConfig={"Comment": "", "Runtime": "cloudfront-js-2.0"},
                              FunctionCode=GENERATE)["ETag"]
    cf.publish_function(Name="gen", IfMatch=etag)
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    got = cf.get_distribution_config(Id=dist_id)
    cfg = got["DistributionConfig"]
    behaviors = cfg["CacheBehaviors"].get("Items", [])
    behaviors.append({**cfg["DefaultCacheBehavior"], "PathPattern": "/fn/*", "CachePolicyId": CACHING_DISABLED,
                      "FunctionAssociations": {"Quantity": 1, "Items": [{
                          "EventType": "viewer-request",
                          "FunctionARN": "arn:aws:cloudfront::123456789012:function/gen"}]}})
    cfg["CacheBehaviors"] = {"Quantity": len(behaviors), "Items": behaviors}
    started = time.monotonic()
    cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])
    wait_all(stack, "/fn/x", "generated at /fn/x", started, 3.0)
    r = requests.get(f"http://127.0.0.1:{stack['pops']['FRA']}/fn/x", timeout=5)
    assert r.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
    assert body(stack["pops"]["FRA"], "/live").startswith("v=")  # the other behaviors still reach the origin
