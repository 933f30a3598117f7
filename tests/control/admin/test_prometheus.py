"""The Prometheus exposition of /metrics: rendered from real snapshot objects, parsed back with
prometheus_client's own parser; served by the control app's route (POPs reached over their admin sockets)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from edge.cdn.stats import PopStats
from edge.control.admin.prometheus import render
from edge.invocation.execution.metrics import Metrics


def snapshot() -> dict[str, Any]:
    control = Metrics()
    m = control.get("us-east-1", "api-fn", "$LATEST")
    m.invocations, m.errors, m.cold_starts = 3, 1, 1
    for ms in (0.5, 7.0, 1200.0):
        m.duration.add(ms)
    m.init_duration.add(150.0)
    pop = Metrics()
    e = pop.get("eu-central-1", "us-east-1.edge-fn", "2")
    e.invocations, e.throttles = 5, 2
    e.duration.add(3.0)
    stats = PopStats(requests=10, hits=6, misses=4, bytes_sent=12345)
    stats.count_response(200, "Hit from cloudfront")
    stats.count_response(404, "Error from cloudfront")
    fra = {**stats.snapshot(), "cache": {"entries": 4, "bytes": 999, "max_bytes": 10_000}, "functions": pop.snapshot()}
    return {
        "control": control.snapshot(),
        "pops": {"FRA": fra, "NRT": {"error": "POP NRT unreachable", "functions": {"error": "POP NRT unreachable"}}},
        "async": {"functions": {"api-fn": {"received": 4, "delivered": 3, "queue": {"depth": 1, "in_flight": 0,
                                                                                    "oldest_age_s": 2.5}}},
                  "queues": {"dlq": {"messages": 2, "visible": 1, "oldest_age_s": 1.0}}, "depth": 1},
    }


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_exposition_parses_and_carries_every_family() -> None:
    text = render(snapshot(), {"FRA": "eu-central-1", "NRT": "ap-northeast-1"}).decode()
    got = samples(text)
    fra = (("pop", "FRA"), ("region", "eu-central-1"))
    assert got[("edgelab_pop_up", fra)] == 1.0
    assert got[("edgelab_pop_up", (("pop", "NRT"), ("region", "ap-northeast-1")))] == 0.0
    assert got[("edgelab_pop_requests_total", fra)] == 10.0
    assert (got[("edgelab_pop_cache_hits_total", fra)], got[("edgelab_pop_cache_misses_total", fra)]) == (6.0, 4.0)
    assert got[("edgelab_pop_bytes_sent_total", fra)] == 12345.0
    assert got[("edgelab_pop_responses_total", (*fra, ("x_cache", "Hit from cloudfront")))] == 1.0
    assert got[("edgelab_pop_http_responses_total", (*fra, ("status", "404")))] == 1.0
    assert got[("edgelab_pop_cache_bytes", fra)] == 999.0
    api = (("function", "api-fn"), ("process", "control"), ("region", "us-east-1"), ("version", "$LATEST"))
    assert got[("edgelab_lambda_invocations_total", api)] == 3.0
    assert got[("edgelab_lambda_errors_total", api)] == 1.0
    assert got[("edgelab_lambda_cold_starts_total", api)] == 1.0
    edge = (("function", "us-east-1.edge-fn"), ("process", "FRA"), ("region", "eu-central-1"), ("version", "2"))
    assert got[("edgelab_lambda_throttles_total", edge)] == 2.0
    # the duration histogram: cumulative buckets in seconds, +Inf = count, sum in seconds
    def bucket(le: str) -> float:
        return got[("edgelab_lambda_duration_seconds_bucket", tuple(sorted((*api, ("le", le)))))]

    assert (bucket("0.001"), bucket("0.01"), bucket("1.0"), bucket("2.5"), bucket("+Inf")) == (1.0, 2.0, 2.0, 3.0, 3.0)
    assert got[("edgelab_lambda_duration_seconds_count", api)] == 3.0
    assert abs(got[("edgelab_lambda_duration_seconds_sum", api)] - 1.2075) < 1e-9
    assert got[("edgelab_lambda_init_duration_seconds_count", api)] == 1.0
    assert got[("edgelab_async_queue_depth", (("function", "api-fn"),))] == 1.0
    assert got[("edgelab_async_events_total", (("function", "api-fn"), ("outcome", "delivered")))] == 3.0
    assert got[("edgelab_queue_visible_messages", (("queue", "dlq"),))] == 1.0
    assert "# TYPE edgelab_lambda_duration_seconds histogram" in text


def test_empty_stack_still_renders() -> None:
    text = render({"control": {}, "pops": {}}, {}).decode()
    assert "# TYPE edgelab_pop_requests_total counter" in text
    assert not [s for f in text_string_to_metric_families(text) for s in f.samples]


def test_grafana_dashboard_queries_only_exposed_metrics() -> None:
    """Every metric a panel of deploy/grafana/edgelab-dashboard.json queries is one /metrics exposes."""
    import json
    import re
    from pathlib import Path

    dash = json.loads((Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "edgelab-dashboard.json").read_text())
    exposed = {s.name for f in text_string_to_metric_families(render(snapshot(), {"FRA": "eu-central-1"}).decode())
               for s in f.samples}
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"\bedgelab_[a-z_]+", e)}
    assert used <= exposed, used - exposed


def test_tier_rows_and_their_functions() -> None:
    """The regional edge cache / Origin Shield nodes (``tiers`` of the snapshot): one row per node, and the
    functions that ran there as a process of their own; an unreachable node is down, not an error."""
    rec = Metrics()
    rec.get("us-east-1", "us-east-1.origin-fn", "1").invocations = 2
    stats = PopStats(requests=7, hits=5, misses=2, origin_fetches=2, collapsed=1)
    data = {**snapshot(), "tiers": {
        "REC-USE1": {"region": "us-east-1", **stats.snapshot(), "cache": {"entries": 2, "bytes": 300},
                     "functions": rec.snapshot()},
        "REC-EUC1": {"region": "eu-central-1", "error": "POP REC-EUC1 unreachable", "functions": {"error": "x"}}}}
    got = samples(render(data, {"FRA": "eu-central-1"}).decode())
    use1 = (("region", "us-east-1"), ("tier", "REC-USE1"))
    assert got[("edgelab_tier_up", use1)] == 1.0
    assert got[("edgelab_tier_up", (("region", "eu-central-1"), ("tier", "REC-EUC1")))] == 0.0
    assert got[("edgelab_tier_requests_total", use1)] == 7.0 and got[("edgelab_tier_cache_hits_total", use1)] == 5.0
    assert got[("edgelab_tier_collapsed_requests_total", use1)] == 1.0
    assert got[("edgelab_tier_cache_objects", use1)] == 2.0
    assert got[("edgelab_lambda_invocations_total", (("function", "us-east-1.origin-fn"), ("process", "REC-USE1"),
                                                     ("region", "us-east-1"), ("version", "1")))] == 2.0
