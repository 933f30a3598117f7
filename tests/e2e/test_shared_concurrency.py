"""Issue 18 item 6 through a real stack (`edgelab serve`: the control process and the IAD POP, both executing in
us-east-1): a reserved concurrency of 2 holds for the region when the Lambda API and the POP drive the same slow
function at once (it was 2 per process, ~4 together), the rest throttled as before (API 429
``ReservedFunctionConcurrentInvocationLimitExceeded``, CloudFront 503); and a holder killed with -9 gives its
slots back. The function reports its own start/end times; overlap is computed from them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from edge.control.stack.declared import EDGE_ROLE
from edge.invocation.service.facade import LambdaService
from tests.control.stack.test_serve import REPO, Resp, free_ports, requests, wait_until

SLOW = '''import time


def handler(event, context):
    start = time.time()
    time.sleep(float(event.get("seconds", 1.2)) if "Records" not in event else 1.2)
    body = "%.6f %.6f" % (start, time.time())
    if "Records" in event:
        return {"status": "200", "headers": {"content-type": [{"value": "text/plain"}]}, "body": body}
    return body
'''
ARN = "arn:aws:lambda:us-east-1:000000000000:function:slow:1"
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edge.invocation.execution.shared_limiter import SharedConcurrencyLimiter
    lim = SharedConcurrencyLimiter(Path(sys.argv[1]), 1000, {"slow": 2}, region="us-east-1")
    leases = [lim.acquire(("slow", "1", "r")) for _ in range(2)]
    print(" ".join(type(x).__name__ for x in leases), flush=True)
    time.sleep(60)
""")


def _distribution() -> dict[str, Any]:
    behavior = {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",  # CachingDisabled
                "LambdaFunctionAssociations": {"Quantity": 1, "Items": [
                    {"EventType": "viewer-request", "LambdaFunctionARN": ARN}]}}
    return {"DistributionConfig": {
        "CallerReference": "shared-concurrency", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "app.example.test", "CustomOriginConfig": {
            "HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": behavior}}


async def _create(state: Path, fdir: Path) -> None:
    async with LambdaService(state) as svc:
        await svc.create_function({"FunctionName": "slow", "Runtime": "python3.11", "Handler": "index.handler",
                                   "MemorySize": 128, "Timeout": 5, "Role": EDGE_ROLE, "Publish": True},
                                  code_dir=fdir)
        await svc.put_function_concurrency("slow", 2)


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _span(text: str) -> tuple[float, float]:
    start, end = text.strip('"').split()
    return float(start), float(end)


def test_reserved_concurrency_is_one_limit_for_the_api_and_the_pop(tmp_path: Path) -> None:
    fdir = tmp_path / "slow"
    fdir.mkdir()
    (fdir / "index.py").write_text(SLOW)
    state = tmp_path / "state"
    asyncio.run(_create(state, fdir))
    (tmp_path / "dist.json").write_text(json.dumps(_distribution()))
    iad, api, unused = free_ports(3)
    (tmp_path / "settings.toml").write_text(f'[origins]\n"app.example.test" = "127.0.0.1:{unused}"\n')
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "edge.control.cli.main", "serve", "--state-dir", str(state),
                             "--pop", f"IAD={iad}", "--api-port", str(api),
                             "--distribution", str(tmp_path / "dist.json"),
                             "--settings", str(tmp_path / "settings.toml")],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    invoke_url = f"http://127.0.0.1:{api}/2015-03-31/functions/slow/invocations"
    pop_url = f"http://127.0.0.1:{iad}/x"
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{iad}/warm", timeout=5).status_code == 200, 60)
        assert requests.post(invoke_url, json={"seconds": 0}).status_code == 200  # both processes warm
        results: list[tuple[str, Resp]] = []
        lock = threading.Lock()

        def call(kind: str, i: int) -> None:
            r = requests.post(invoke_url, json={}) if kind == "api" else requests.get(f"{pop_url}{i}", timeout=20)
            with lock:
                results.append((kind, r))

        threads = [threading.Thread(target=call, args=(kind, i)) for i in range(4) for kind in ("api", "pop")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 8
        spans = [_span(r.text) for _, r in results if r.status_code == 200]
        throttled_api = [r for kind, r in results if kind == "api" and r.status_code == 429]
        throttled_pop = [r for kind, r in results if kind == "pop" and r.status_code == 503]
        assert len(spans) + len(throttled_api) + len(throttled_pop) == 8, [(k, r.status_code, r.text) for k, r in results]
        assert _max_overlap(spans) <= 2, spans
        assert len(spans) >= 2 and len(throttled_api) + len(throttled_pop) >= 4, [(k, r.status_code, r.text) for k, r in results]
        for r in throttled_api:
            assert r.headers["x-amzn-errortype"].startswith("TooManyRequestsException")
            assert json.loads(r.text)["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        for r in throttled_pop:
            assert "The Lambda function associated with the CloudFront distribution was throttled." in r.text

        # a process holding both slots (here a bare one) is killed with -9: the kernel gives them back
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(state / "concurrency")], cwd=REPO,
                                  stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert holder.stdout is not None and holder.stdout.readline().split() == [b"Lease", b"Lease"]
            assert requests.post(invoke_url, json={"seconds": 0}).status_code == 429
            assert requests.get(f"{pop_url}-held", timeout=20).status_code == 503
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
        finally:
            holder.kill()
            holder.wait(timeout=10)
            if holder.stdout is not None:
                holder.stdout.close()
        assert requests.post(invoke_url, json={"seconds": 0}).status_code == 200
        assert requests.get(f"{pop_url}-freed", timeout=20).status_code == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        log.close()
