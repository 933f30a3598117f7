"""The dashboard in headless Chromium against a real stack (`edgelab serve`: control process + one POP, a real
origin on 127.0.0.1): after 3 misses, 9 hits, a cold and a warm viewer-request invocation and a throttle, the page's
charts show exactly those figures. The numbers are read from each chart's own data (the uPlot instance's ``data``,
exposed as ``window.edgelabCharts``) and the tables' data attributes; no screenshot is compared.

The browser is Debian's Chromium at /usr/bin/chromium, driven by Playwright (never `playwright install`: it
downloads a browser and the machine is offline); `deploy/dev.sh test` installs it, and a machine without it fails
here, naming that script.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.control.stack.test_serve import REPO, free_ports, requests, wait_until
from tests.http_origin import send_text

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GREETER = '''def handler(event, context):
    return {"status": "200", "headers": {"content-type": [{"value": "text/plain"}]}, "body": "hello"}
'''
LIMITED = '''def handler(event, context):
    return {"ok": True}
'''
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def distribution() -> dict[str, Any]:
    plain = {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all", "CachePolicyId": CACHING_OPTIMIZED}
    greeter = {**plain, "PathPattern": "/fn*", "LambdaFunctionAssociations": {"Quantity": 1, "Items": [
        {"EventType": "viewer-request", "LambdaFunctionARN": "arn:aws:lambda:us-east-1:000000000000:function:greeter:1"}]}}
    return {"DistributionConfig": {
        "CallerReference": "dashboard", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "app.example.test", "CustomOriginConfig": {
            "HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": plain, "CacheBehaviors": {"Quantity": 1, "Items": [greeter]}}}


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"page {self.path}".encode()
        send_text(self, body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def dash_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("dash")
    for name, code in (("greeter", GREETER), ("limited", LIMITED)):
        (root / name).mkdir()
        (root / name / "index.py").write_text(code)
    iad, api = free_ports(2)
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server = threading.Thread(target=origin.serve_forever, daemon=True)
    server.start()
    (root / "dist.json").write_text(json.dumps(distribution()))
    (root / "settings.toml").write_text(
        f'[[pops]]\nname = "IAD"\nregion = "us-east-1"\nport = {iad}\n\n'  # one POP, no HTTPS listener
        f'[origins]\n"app.example.test" = "127.0.0.1:{origin.server_port}"\n\n'
        + "".join(f'[[functions]]\nname = "{n}"\ndir = "{n}"\ntimeout = 5\n\n' for n in ("greeter", "limited")))
    cmd = [sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(root / "state"),
           "--distribution", str(root / "dist.json"), "--settings", str(root / "settings.toml"),
           "--api-port", str(api)]
    log = open(root / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        # ready once a sample holds the POP's counters (its admin socket opens after its viewer port): no viewer
        # request is sent before the test's own
        wait_until(lambda: any(n is not None for n in _series(f"http://127.0.0.1:{api}")["pops"]["IAD"]["requests"]),
                   40)
        yield {"pop": f"http://127.0.0.1:{iad}", "api": f"http://127.0.0.1:{api}", "log": root / "serve.log"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        origin.shutdown()
        origin.server_close()


def _series(api: str) -> dict[str, Any]:
    return requests.get(f"{api}/edgelab/v1/series").json()


def _browser():  # type: ignore[no-untyped-def]
    """Playwright's Chromium launcher for Debian's browser, or a failure saying how to install it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: the dashboard test needs Debian's chromium package, which "
                    "`deploy/dev.sh test` installs (apt-get install chromium); run it, or install the package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: `deploy/dev.sh test` installs the dev extras "
                    "(pip install -e '.[dev]')")
    return sync_playwright()


def test_dashboard_charts_show_what_the_stack_served(dash_stack: dict[str, Any]) -> None:
    pop, api = dash_stack["pop"], dash_stack["api"]
    # 3 misses, and only once a sample holds them (so one sample's hit ratio is 0 %), 9 hits
    for path in ("/a", "/b", "/c"):
        assert requests.get(pop + path).headers["x-cache"] == "Miss from cloudfront"
    wait_until(lambda: _series(api)["pops"]["IAD"]["totals"]["misses"] == 3, 10)
    for _ in range(3):
        for path in ("/a", "/b", "/c"):
            assert requests.get(pop + path).headers["x-cache"] == "Hit from cloudfront"
    # a cold, then a warm viewer-request invocation at the POP
    first, second = requests.get(pop + "/fn"), requests.get(pop + "/fn")
    assert first.text == second.text == "hello"
    assert "greeter:1 cold" in first.headers["server-timing"] and "greeter:1 warm" in second.headers["server-timing"]
    # a throttle: reserved concurrency 0 (PutFunctionConcurrency), then Invoke through the Lambda API
    put = urllib.request.Request(f"{api}/2017-10-31/functions/limited/concurrency", method="PUT",
                                 data=json.dumps({"ReservedConcurrentExecutions": 0}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(put, timeout=10) as r:
        assert r.status == 200
    throttled = requests.post(f"{api}/2015-03-31/functions/limited/invocations", json={})
    assert throttled.status_code == 429, throttled.text

    with _browser() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{api}/edgelab/", timeout=15000)
            page.wait_for_function("() => document.querySelector('tr[data-pop=\"IAD\"]')"
                                   " && document.querySelector('tr[data-pop=\"IAD\"]').dataset.hitRatio === '0.75'"
                                   " && window.edgelabCharts['latency:greeter']"
                                   " && document.querySelector('tr[data-function=\"limited\"]')", timeout=15000)
            charts = page.evaluate("""() => Object.fromEntries(Object.entries(window.edgelabCharts).map(
                ([name, u]) => [name, {labels: u.series.map(s => s.label), data: u.data}]))""")
            row = page.eval_on_selector('tr[data-pop="IAD"]', "tr => [...tr.cells].map(c => c.textContent)")
            page.wait_for_function("() => document.querySelector('tr[data-pop=\"REC-USE1\"]')", timeout=15000)
            rec = page.eval_on_selector('tr[data-pop="REC-USE1"]', "tr => [...tr.cells].map(c => c.textContent)")
        finally:
            browser.close()
    assert row[0] == "IAD" and row[3:7] == ["9", "3", "75.0 %", "0"], row
    # the hit-ratio chart: IAD's line went through a sample of misses only (0 %) and one of hits only (100 %)
    hit = charts["hit-ratio"]
    assert hit["labels"][1:] == ["IAD", "REC-USE1"]  # the POP, then its region's regional edge cache
    # the REC's row is its own counters (whether the POP's misses went through it depends on whether the REC, which
    # starts after the POP, was up yet: compared with what the stack's metrics say of it, not with a fixed count)
    tier = requests.get(f"{api}/edgelab/v1/metrics", timeout=10).json()["tiers"]["REC-USE1"]
    assert rec[0] == "REC-USE1" and rec[2:5] == [str(tier["requests"]), str(tier["hits"] + tier["refresh_hits"]),
                                                 str(tier["misses"])], (rec, tier)
    ratios = [r for r in hit["data"][1] if r is not None]
    assert 0 in ratios and 100 in ratios, ratios
    # request rate x interval, summed over the window: the 14 requests sent (12 cached + 2 generated)
    rate = charts["request-rate"]
    t, rates = rate["data"][0], rate["data"][1]
    served = sum((r or 0) * ((t[i] - t[i - 1]) if i else 1.0) for i, r in enumerate(rates))
    assert abs(served - 14) < 0.5, (served, t, rates)
    inv = charts["invocations"]
    col = {label: sum(v or 0 for v in inv["data"][i]) for i, label in enumerate(inv["labels"]) if i}
    assert col["greeter invocations"] == 2 and col["greeter cold starts"] == 1, col
    errors = charts["errors-throttles"]
    col = {label: sum(v or 0 for v in errors["data"][i]) for i, label in enumerate(errors["labels"]) if i}
    assert col["limited throttles"] == 1 and col["greeter throttles"] == 0 and col["IAD errors"] == 0, col
    lat = charts["latency:greeter"]
    assert lat["labels"][1:] == ["warm", "cold"] and sum(lat["data"][1]) == 1 and sum(lat["data"][2]) == 1, lat
