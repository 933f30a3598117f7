"""Regional edge caches and Origin Shield in a real stack (``edgelab serve``: supervisor, control process, two tier
nodes, three POP processes): IAD and BOS share the us-east-1 REC, FRA has its own (eu-central-1), and the origin
behind ``/shielded/*`` has Origin Shield in eu-central-1 (where FRA's REC is the shield). The origin is a counting
HTTP server in this process: what CloudFront's tiers promise is visible as the number of requests it sees."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.control.stack.test_cff_stack import _serve, _stop
from tests.control.stack.test_serve import Resp, _do, free_ports, requests, wait_until
from tests.http_origin import send_text

OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # Managed-CachingOptimized
DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
ALL_METHODS = {"Quantity": 7, "Items": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}}


class CountingOrigin(ThreadingHTTPServer):
    """Answers every path with a cacheable body naming the path; counts (method, path)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with origin.lock:
                    origin.seen[(self.command, self.path)] += 1
                body = f"{self.command} {self.path}".encode()
                send_text(self, body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def count(self, path: str, method: str = "GET") -> int:
        with self.lock:
            return self.seen[(method, path)]


def _distribution() -> dict[str, Any]:
    def origin(oid: str, shield: str | None) -> dict[str, Any]:
        o: dict[str, Any] = {"Id": oid, "DomainName": f"{oid}.example.test",
                             "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}
        if shield:
            o["OriginShield"] = {"Enabled": True, "OriginShieldRegion": shield}
        return o

    def behavior(oid: str, pattern: str | None, policy: str = OPTIMIZED) -> dict[str, Any]:
        b: dict[str, Any] = {"TargetOriginId": oid, "ViewerProtocolPolicy": "allow-all", "CachePolicyId": policy,
                             "AllowedMethods": ALL_METHODS}
        if pattern:
            b["PathPattern"] = pattern
        return b

    return {"DistributionConfig": {
        "CallerReference": "tiers", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 2, "Items": [origin("plain", None), origin("shielded", "eu-central-1")]},
        "DefaultCacheBehavior": behavior("plain", None),
        "CacheBehaviors": {"Quantity": 2, "Items": [behavior("shielded", "/shielded/*"),
                                                    behavior("plain", "/api/*", DISABLED)]},
    }}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("tiers")
    origin = CountingOrigin()
    thread = threading.Thread(target=origin.serve_forever, name="counting-origin", daemon=True)
    thread.start()
    iad, bos, fra, api = free_ports(4)
    port = origin.server_address[1]
    (tmp / "dist.json").write_text(json.dumps(_distribution()))
    (tmp / "settings.toml").write_text(
        f'[origins]\n"plain.example.test" = "127.0.0.1:{port}"\n"shielded.example.test" = "127.0.0.1:{port}"\n'
        f'[[pops]]\nname = "IAD"\nregion = "us-east-1"\nport = {iad}\norigin_latency_ms = 0\n'
        f'[[pops]]\nname = "BOS"\nregion = "us-east-1"\nport = {bos}\norigin_latency_ms = 0\n'
        f'[[pops]]\nname = "FRA"\nregion = "eu-central-1"\nport = {fra}\norigin_latency_ms = 0\n')
    proc = _serve(tmp, tmp / "dist.json", tmp / "settings.toml", {}, api)
    try:
        # every child ready (the tier nodes start while the POPs do: the banner comes when all are)
        wait_until(lambda: "edgelab is up" in (tmp / "serve.log").read_text(), 60)
    except AssertionError:
        _stop(proc)
        origin.shutdown()
        raise AssertionError((tmp / "serve.log").read_text()[-4000:]) from None
    try:
        yield {"pops": {"IAD": iad, "BOS": bos, "FRA": fra}, "api": api, "origin": origin, "tmp": tmp}
    finally:
        _stop(proc)
        origin.shutdown()


def _get(stack: dict[str, Any], pop: str, path: str, method: str = "GET") -> Resp:
    """(header names in lower case)"""
    return _do(urllib.request.Request(f"http://127.0.0.1:{stack['pops'][pop]}{path}", method=method,
                                      data=b"x" if method == "POST" else None), 10)


def _tiers(stack: dict[str, Any]) -> dict[str, Any]:
    return requests.get(f"http://127.0.0.1:{stack['api']}/edgelab/v1/metrics", timeout=10).json()["tiers"]


def test_two_pops_of_a_region_share_its_regional_edge_cache(stack: dict[str, Any]) -> None:
    origin = stack["origin"]
    first = _get(stack, "IAD", "/shared.txt")
    assert first.status_code == 200 and first.headers["x-cache"] == "Miss from cloudfront"
    assert 'cdn-upstream-layer;desc="REC"' in first.headers["server-timing"]
    other = _get(stack, "BOS", "/shared.txt")  # BOS has never seen it: its REC has
    assert other.text == "GET /shared.txt"
    assert other.headers["x-cache"] == "Hit from cloudfront", other.headers
    assert 'cdn-hit-layer;desc="REC"' in other.headers["server-timing"]
    again = _get(stack, "BOS", "/shared.txt")  # now from BOS's own cache
    assert again.headers["x-cache"] == "Hit from cloudfront" and "cdn-hit-layer" not in again.headers["server-timing"]
    assert origin.count("/shared.txt") == 1
    fra = _get(stack, "FRA", "/shared.txt")  # another region, another REC, no shield: a second origin request
    assert fra.headers["x-cache"] == "Miss from cloudfront" and origin.count("/shared.txt") == 2
    tiers = _tiers(stack)
    assert set(tiers) == {"REC-USE1", "REC-EUC1"}
    assert tiers["REC-USE1"]["region"] == "us-east-1" and tiers["REC-USE1"]["hits"] >= 1


def test_origin_shield_collapses_two_regions_into_one_origin_request(stack: dict[str, Any]) -> None:
    origin = stack["origin"]
    iad = _get(stack, "IAD", "/shielded/a.txt")  # IAD -> us-east-1 REC -> the shield (eu-central-1) -> origin
    assert iad.headers["x-cache"] == "Miss from cloudfront"
    assert 'cdn-upstream-layer;desc="Origin Shield"' in iad.headers["server-timing"], iad.headers
    fra = _get(stack, "FRA", "/shielded/a.txt")  # FRA's REC is the shield: it has the object
    assert fra.headers["x-cache"] == "Hit from cloudfront" and 'cdn-hit-layer;desc="REC"' in fra.headers["server-timing"]
    bos = _get(stack, "BOS", "/shielded/a.txt")  # us-east-1's REC stored it on the way back
    assert 'cdn-hit-layer;desc="REC"' in bos.headers["server-timing"]
    assert origin.count("/shielded/a.txt") == 1


def test_proxy_methods_and_caching_disabled_bypass_the_tiers(stack: dict[str, Any]) -> None:
    origin = stack["origin"]
    before = {name: t["requests"] for name, t in _tiers(stack).items()}
    for _ in range(2):
        r = _get(stack, "IAD", "/api/dynamic")
        assert r.status_code == 200 and r.headers["x-cache"] == "Miss from cloudfront"
        assert "cdn-upstream-layer" not in r.headers["server-timing"]
    posted = _get(stack, "BOS", "/posted", "POST")
    assert posted.status_code == 200 and posted.text == "POST /posted"
    assert origin.count("/api/dynamic") == 2 and origin.count("/posted", "POST") == 1
    assert {name: t["requests"] for name, t in _tiers(stack).items()} == before


def test_an_invalidation_clears_every_tier_and_the_metrics_show_the_tiers(stack: dict[str, Any]) -> None:
    origin = stack["origin"]
    _get(stack, "IAD", "/inv.txt")
    _get(stack, "BOS", "/inv.txt")
    assert origin.count("/inv.txt") == 1
    r = requests.post(f"http://127.0.0.1:{stack['api']}/edgelab/v1/invalidations", json={"paths": ["/inv.txt"]},
                      timeout=10)
    assert r.status_code == 201 and set(r.json()["pops"]) == {"IAD", "BOS", "FRA", "REC-USE1", "REC-EUC1"}, r.text
    after = _get(stack, "BOS", "/inv.txt")  # gone from BOS and from the REC: the origin is asked again
    assert after.headers["x-cache"] == "Miss from cloudfront" and origin.count("/inv.txt") == 2
    text = requests.get(f"http://127.0.0.1:{stack['api']}/metrics", timeout=10).text
    assert 'edgelab_tier_cache_hits_total{region="us-east-1",tier="REC-USE1"}' in text
    assert 'edgelab_pop_tier_hits_total{pop="BOS",region="us-east-1"}' in text
    assert 'edgelab_tier_up{region="eu-central-1",tier="REC-EUC1"} 1.0' in text
    assert _tiers(stack)["REC-USE1"]["invalidated_objects"] >= 1
