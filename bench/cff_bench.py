"""CloudFront Functions engine micro-benchmarks (medians; no HTTP, no wrk): ``python -m bench cff [--quick]``.

Figures (issue 13 targets in brackets):

- ``engine call``: one ``FunctionEngine.invoke`` of a viewer-request function that adds a header;
- ``viewer-request step``: ``build_event`` from an ``EdgeRequest`` + invoke + ``apply_request_result``, i.e. what the
  pipeline's CloudFront Functions step adds to a request apart from its own glue [<= 50 µs added p50];
- ``kvs get``: the same function with one ``await kvs.get(key)`` more, minus the async function without it
  [<= 20 µs p50];
- ``crypto sha256``: one ``createHash('sha256').update(s).digest('hex')`` (pure JavaScript in the engine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from edge.cdn.cloudfront_functions.engine import FunctionEngine, KvsView
from edge.cdn.cloudfront_functions.event import apply_request_result, build_event
from edge.cdn.models import EdgeRequest

ADD_HEADER = "function handler(event) { var r = event.request; r.headers['x-hello'] = {value: 'world'}; return r; }"
ASYNC_NO_KVS = ("import cf from 'cloudfront';\nconst kvs = cf.kvs();\n"
                "async function handler(event) { var r = event.request; r.headers['x-v'] = {value: 'x'}; return r; }")
ASYNC_KVS = ("import cf from 'cloudfront';\nconst kvs = cf.kvs();\n"
             "async function handler(event) { var r = event.request; r.headers['x-v'] = {value: await kvs.get('route:/a')}; return r; }")
CRYPTO = ("function handler(event) { var r = event.request;"
          " r.headers['x-h'] = {value: require('crypto').createHash('sha256').update(r.uri).digest('hex')}; return r; }")
NO_CRYPTO = "function handler(event) { var r = event.request; r.headers['x-h'] = {value: r.uri}; return r; }"


def median_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(500, n)):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cff")
    parser.add_argument("--quick", action="store_true", help="2,000 calls per figure instead of 20,000")
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else 20_000
    request = EdgeRequest(method="GET", uri="/a", querystring="x=1", client_ip="127.0.0.1",
                          headers=[("Host", "example.com"), ("User-Agent", "curl/8"), ("Accept", "*/*")])
    event, raw = build_event(request, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                             distribution_id="E1", request_id="r")
    engine = FunctionEngine("bench", ADD_HEADER, "cloudfront-js-1.0")
    engine_call = median_us(lambda: engine.invoke(event, raw_query=raw), n)

    def step() -> object:
        ev, rq = build_event(request, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                             distribution_id="E1", request_id="r")
        return apply_request_result(request, ev, engine.invoke(ev, raw_query=rq).value)

    step_us = median_us(step, n)
    view = KvsView("id", 1, {f"route:/{i}": f"/v{i}" for i in range(1000)} | {"route:/a": "/b"}, {"keyCount": 1001})
    without = FunctionEngine("nokvs", ASYNC_NO_KVS, "cloudfront-js-2.0")
    with_kvs = FunctionEngine("kvs", ASYNC_KVS, "cloudfront-js-2.0")
    assert with_kvs.invoke(event, kvs=view).value["headers"]["x-v"] == {"value": "/b"}
    t_without = median_us(lambda: without.invoke(event, kvs=view), n)
    t_with = median_us(lambda: with_kvs.invoke(event, kvs=view), n)
    crypto = FunctionEngine("crypto", CRYPTO, "cloudfront-js-1.0")
    plain = FunctionEngine("plain", NO_CRYPTO, "cloudfront-js-1.0")
    t_crypto = median_us(lambda: crypto.invoke(event), n) - median_us(lambda: plain.invoke(event), n)
    print(f"cff engine call (add a header)          p50 {engine_call:7.1f} µs")
    print(f"cff viewer-request step (event+run+apply) p50 {step_us:7.1f} µs   [target <= 50 µs added]")
    print(f"cff async handler, no kvs              p50 {t_without:7.1f} µs")
    print(f"cff async handler + 1 kvs get          p50 {t_with:7.1f} µs")
    print(f"cff kvs get (difference)               p50 {t_with - t_without:7.1f} µs   [target <= 20 µs]")
    print(f"cff crypto sha256 (difference)         p50 {t_crypto:7.1f} µs")
    return 0
