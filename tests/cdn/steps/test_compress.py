"""Compress (edge.cdn.steps.compress): which responses CloudFront compresses, and the ETag conversion."""

from __future__ import annotations

import gzip

import brotli
import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.plan import compress_codings
from edge.cdn.models import EdgeResponse, ResponseMeta
from edge.cdn.steps.compress import MAX_BYTES, MIN_BYTES, _eligible, _etag, compress
from tests.cdn.scripted_origin import behavior_config, distribution_config


def _resp(status: int = 200, size: int = MIN_BYTES, ctype: str = "text/css", length: int | None = -1,
          **extra: str) -> EdgeResponse:
    body = b"a" * size
    headers = [("Content-Type", ctype), *extra.items()]
    return EdgeResponse(status, headers, body, meta=ResponseMeta(content_length=size if length == -1 else length))


@pytest.mark.parametrize(("resp", "ok"), [
    (_resp(), True),
    (_resp(size=MIN_BYTES - 1), False),
    (_resp(size=MAX_BYTES + 1), False),
    (_resp(status=404, ctype="application/json; charset=utf-8"), True),
    (_resp(status=403, ctype="TEXT/HTML"), True),
    (_resp(status=500), False),
    (_resp(status=206), False),
    (_resp(ctype="image/jpeg"), False),
    (_resp(ctype="application/octet-stream"), False),
    (_resp(length=None), False),  # no Content-Length from the origin
    (_resp(**{"Content-Encoding": "identity"}), False),
])
def test_eligible(resp: EdgeResponse, ok: bool) -> None:
    assert _eligible(resp) is ok


def test_etag_conversion() -> None:
    assert [_etag(v) for v in ('"abc"', 'W/"abc"', "abc")] == ['W/"abc"', 'W/"abc"', None]


def test_compress_round_trips_and_is_deterministic() -> None:
    body = b"hello edge " * 500
    assert brotli.decompress(compress(body, "br")) == body
    assert gzip.decompress(compress(body, "gzip")) == body and compress(body, "gzip") == compress(body, "gzip")


def test_codings_per_behavior() -> None:
    from edge.cdn.config.settings import Settings

    def codings(b: dict) -> tuple[bool, bool] | None:
        return compress_codings(load_distribution(distribution_config(default=b), Settings(pops=())).default_behavior)

    optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
    disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert codings({**behavior_config(cache_policy=optimized), "Compress": True}) == (True, True)
    assert codings({**behavior_config(cache_policy=optimized), "Compress": False}) is None
    assert codings({**behavior_config(cache_policy=disabled), "Compress": True}) is None  # TTL 0: never compressed
    assert codings({**behavior_config(), "Compress": True}) == (True, False)  # legacy settings: gzip only
