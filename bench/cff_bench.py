"""CloudFront Functions engine micro-benchmarks (medians; no HTTP, no wrk): ``python -m bench cff [--quick]``.

Figures (issue 13 targets in brackets):

- ``engine call``: one ``FunctionEngine.invoke`` of a viewer-request function that adds a header;
- ``viewer-request step``: ``request_fields`` from an ``EdgeRequest`` + ``invoke_request`` (the engine builds the
  event and hands back the result as a delta: the uri and the appended header) + ``apply_request_delta``, i.e. what the pipeline's CloudFront
  Functions step adds to a request apart from its own glue [<= 50 µs added p50]; and, in the same run, the full
  path it replaced (``invoke``: the whole result as JSON, ``apply_request_result`` validating all of it), which
  still serves every result that is not such a delta;
- the step's parts: the request's fields, the engine call, the result applied (every call runs the function:
  ``memo=False``); and the step for an event the engine has seen before (``FunctionEngine``, "Repeated events"),
  which is answered from memory;
- ``kvs get``: the same function with one ``await kvs.get(key)`` more, minus the async function without it
  [<= 20 µs p50];
- ``crypto sha256``: one ``createHash('sha256').update(s).digest('hex')`` (pure JavaScript in the engine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

from edge.cdn.cloudfront_functions.delta import apply_request_delta, request_fields
from edge.cdn.cloudfront_functions.engine import FunctionEngine, KvsView
from edge.cdn.cloudfront_functions.event import (
    apply_request_result,
    build_event,
)
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
    engine = FunctionEngine("bench", ADD_HEADER, "cloudfront-js-1.0", memo=False)  # every call runs the function
    remembering = FunctionEngine("bench", ADD_HEADER, "cloudfront-js-1.0")
    engine_call = median_us(lambda: engine.invoke(event, raw_query=raw), n)

    def full_step() -> object:
        ev, rq = build_event(request, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                             distribution_id="E1", request_id="r")
        return apply_request_result(request, ev, engine.invoke(ev, raw_query=rq).value)

    def fields() -> str:
        out = request_fields(request, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id="r")
        assert out is not None
        return out

    def step(engine: FunctionEngine = engine) -> object:
        inv = engine.invoke_request(fields(), partial(apply_request_delta, request))
        assert inv.applied is not None
        return inv.applied

    text = fields()
    value = engine.invoke(event, raw_query=raw).value
    uri, added, plain = engine.invoke_request(text, lambda uri, added, plain: (uri, added, plain)).applied
    full_step_us = median_us(full_step, n)
    step_us = median_us(step, n)
    memo_step_us = median_us(partial(step, remembering), n)
    assert remembering.memo_hits > 0
    build_us = median_us(fields, n)
    delta_call_us = median_us(lambda: engine.invoke_request(text, lambda uri, added, plain: True), n)
    apply_full_us = median_us(lambda: apply_request_result(request, event, value), n)
    apply_delta_us = median_us(lambda: apply_request_delta(request, uri, added, plain), n)
    view = KvsView("id", 1, {f"route:/{i}": f"/v{i}" for i in range(1000)} | {"route:/a": "/b"}, {"keyCount": 1001})
    without = FunctionEngine("nokvs", ASYNC_NO_KVS, "cloudfront-js-2.0")
    with_kvs = FunctionEngine("kvs", ASYNC_KVS, "cloudfront-js-2.0")
    assert with_kvs.invoke(event, kvs=view).value["headers"]["x-v"] == {"value": "/b"}
    t_without = median_us(lambda: without.invoke(event, kvs=view), n)
    t_with = median_us(lambda: with_kvs.invoke(event, kvs=view), n)
    crypto = FunctionEngine("crypto", CRYPTO, "cloudfront-js-1.0")
    plain = FunctionEngine("plain", NO_CRYPTO, "cloudfront-js-1.0")
    t_crypto = median_us(lambda: crypto.invoke(event), n) - median_us(lambda: plain.invoke(event), n)
    print(f"cff viewer-request step (event+run+apply) p50 {step_us:7.1f} µs   [target <= 50 µs added]")
    print(f"cff viewer-request step, a repeated event p50 {memo_step_us:7.1f} µs   (answered from memory)")
    print(f"  of which request_fields                p50 {build_us:7.1f} µs")
    print(f"  of which engine invoke_request (delta) p50 {delta_call_us:7.1f} µs")
    print(f"  of which apply_request_delta           p50 {apply_delta_us:7.1f} µs")
    print(f"cff viewer-request step, full path       p50 {full_step_us:7.1f} µs   (same run: before the delta)")
    print(f"  of which engine invoke (full result)   p50 {engine_call:7.1f} µs")
    print(f"  of which apply_request_result          p50 {apply_full_us:7.1f} µs")
    print(f"cff async handler, no kvs              p50 {t_without:7.1f} µs")
    print(f"cff async handler + 1 kvs get          p50 {t_with:7.1f} µs")
    print(f"cff kvs get (difference)               p50 {t_with - t_without:7.1f} µs   [target <= 20 µs]")
    print(f"cff crypto sha256 (difference)         p50 {t_crypto:7.1f} µs")
    return 0


if __name__ == "__main__":  # `python -m bench.cff_bench` (as `python -m bench all` runs it)
    sys.exit(main(sys.argv[1:]))
