"""Through a real stack: an association pinning a version older than the newest published one is warned about at
startup and when a newer version is published, without ``--watch`` (and keeps running its version, as on
CloudFront); ``edgelab serve --origin URL`` writes a minimal distribution for one's own app into the state
directory, says where it is and serves the app through the POPs."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge.control.stack.declared import EDGE_ROLE
from edge.invocation.service.facade import LambdaService
from tests.control.stack.test_dev_loop import GREETER, _Origin, distribution
from tests.control.stack.test_serve import REPO, free_ports, requests, wait_until


@pytest.fixture
def origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _serve(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, int], Any]:
    iad, fra, nrt, api = free_ports(4)
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(tmp / "state"),
           "--pop", f"IAD={iad}", "--pop", f"FRA={fra}", "--pop", f"NRT={nrt}", "--api-port", str(api), *args]
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return proc, {"IAD": iad, "FRA": fra, "NRT": nrt, "api": api}, log


def _stop(proc: subprocess.Popen[bytes], log: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    log.close()


async def _publish_twice(state: Path, fdir: Path) -> None:
    """Versions 1 (v1) and 2 (v2) of greeter, as an earlier session would have left them."""
    async with LambdaService(state) as svc:
        await svc.create_function({"FunctionName": "greeter", "Runtime": "python3.11", "Handler": "index.handler",
                                   "MemorySize": 128, "Timeout": 5, "Role": EDGE_ROLE, "Publish": True},
                                  code_dir=fdir)
        (fdir / "index.py").write_text(GREETER % "v2")
        await svc.update_function_code("greeter", {}, code_dir=fdir)
        await svc.publish_version("greeter")


def test_a_stale_pin_is_warned_at_startup_and_on_publish_and_keeps_its_version(tmp_path: Path, origin: int) -> None:
    fdir = tmp_path / "greeter"
    fdir.mkdir()
    (fdir / "index.py").write_text(GREETER % "v1")
    asyncio.run(_publish_twice(tmp_path / "state", fdir))
    dist = distribution()
    dist["DistributionConfig"]["CacheBehaviors"] = {"Quantity": 0, "Items": []}
    (tmp_path / "dist.json").write_text(json.dumps(dist))
    (tmp_path / "settings.toml").write_text(f'[origins]\n"app.example.test" = "127.0.0.1:{origin}"\n\n'
                                            '[[functions]]\nname = "greeter"\ndir = "greeter"\ntimeout = 5\n')
    proc, ports, log = _serve(tmp_path, "--distribution", str(tmp_path / "dist.json"),
                              "--settings", str(tmp_path / "settings.toml"))
    try:
        url = f"http://127.0.0.1:{ports['FRA']}/hello"
        wait_until(lambda: requests.get(url, timeout=2).status_code == 200, 40)
        r = requests.get(url)
        assert r.text == "v1" and 'desc="greeter:1 ' in r.headers["server-timing"]  # the pinned version runs
        wait_until(lambda: "pop-NRT ready" in (tmp_path / "serve.log").read_text(), 40)  # the last POP started
        text = (tmp_path / "serve.log").read_text()
        for pop in ("IAD", "FRA", "NRT"):
            assert (f"POP {pop}: viewer-request association arn:aws:lambda:us-east-1:000000000000:function:greeter:1 "
                    "pins version 1, but version 2 is the newest published") in text, text[-3000:]
        assert "re-pointed" not in text
        api = f"http://127.0.0.1:{ports['api']}/2015-03-31/functions/greeter"
        changed = urllib.request.Request(f"{api}/configuration", data=b'{"Timeout": 4}', method="PUT",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(changed, timeout=20) as resp:
            assert resp.status == 200
        published = requests.post(f"{api}/versions", json={})  # a changed configuration: a new version
        assert published.status_code == 201 and published.json()["Version"] == "3", published.text
        # every POP says so within seconds, without waiting for a request
        wait_until(lambda: all(f"POP {pop}: viewer-request association arn:aws:lambda:us-east-1:000000000000:function:"
                               "greeter:1 pins version 1, but version 3 is the newest published"
                               in (tmp_path / "serve.log").read_text() for pop in ("IAD", "FRA", "NRT")), 10)
        assert 'desc="greeter:1 ' in requests.get(url).headers["server-timing"]
    finally:
        _stop(proc, log)


def test_serve_origin_writes_and_uses_a_minimal_distribution_for_ones_own_app(tmp_path: Path, origin: int) -> None:
    app = f"http://127.0.0.1:{origin}"
    proc, ports, log = _serve(tmp_path, "--origin", app)
    try:
        base = f"http://127.0.0.1:{ports['IAD']}"
        wait_until(lambda: requests.get(f"{base}/up", timeout=2).status_code == 200, 40)
        written = tmp_path / "state" / "distribution.json"
        # the banner says where (printed once every node is up: on a loaded machine well after IAD answers)
        wait_until(lambda: str(written) in (tmp_path / "serve.log").read_text(), 40)
        config = json.loads(written.read_text())["DistributionConfig"]
        assert config["Origins"]["Items"][0]["DomainName"] == "app.edgelab.local"
        first, second = requests.get(f"{base}/page?x=1"), requests.get(f"{base}/page?x=1")
        assert first.text.startswith("static /page?x=1 via ")  # the app
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("Miss from cloudfront", "Hit from cloudfront")
        assert requests.get(f"{base}/page?x=2").headers["x-cache"] == "Miss from cloudfront"  # query in the key
        posted = requests.post(f"{base}/form", json={"a": 1})
        assert posted.status_code == 200 and posted.text == 'posted {"a": 1}'
    finally:
        _stop(proc, log)
    written.write_text(written.read_text().replace("edgelab serve --origin", "edited: edgelab serve --origin"))
    proc, ports, log = _serve(tmp_path, "--origin", app)  # an edited file is kept, not rewritten
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{ports['IAD']}/up", timeout=2).status_code == 200, 40)
        assert "edited: edgelab serve --origin" in written.read_text()
    finally:
        _stop(proc, log)


def test_serve_origin_refuses_bad_combinations(tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir",
                               str(tmp_path / "s"), *args], cwd=REPO, capture_output=True, text=True, timeout=60)

    both = serve("--origin", "http://127.0.0.1:3000", "--distribution", "dist.json")
    assert both.returncode == 2 and "either --origin" in both.stderr
    bad = serve("--origin", "127.0.0.1:3000")
    assert bad.returncode == 2 and "expected your app's URL such as http://127.0.0.1:3000" in bad.stderr
    assert not (tmp_path / "s" / "distribution.json").exists()
