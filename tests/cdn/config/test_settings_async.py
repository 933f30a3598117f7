"""The ``[async]`` settings table: defaults (AWS timings), overrides, validation errors naming the key."""

from __future__ import annotations

import pytest

from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import load_settings, parse_settings
from edge.control.stack.config import REPO_ROOT
from edge.invocation.events.model import AsyncSettings


def test_defaults_are_aws_timings() -> None:
    a = parse_settings({}).async_
    assert a == AsyncSettings() and a.retry_backoff_scale == 1.0
    assert (a.throttle_backoff_base_s, a.throttle_backoff_max_s) == (1.0, 300.0)


def test_overrides_and_example_file() -> None:
    a = parse_settings({"async": {"retry_backoff_scale": 0.001, "delivery_concurrency": 8, "poll_interval_s": 0.01,
                                  "throttle_backoff_base_s": 2, "throttle_backoff_max_s": 10,
                                  "destination_depth_limit": 4}}).async_
    assert (a.retry_backoff_scale, a.delivery_concurrency, a.poll_interval_s) == (0.001, 8, 0.01)
    assert (a.throttle_backoff_base_s, a.throttle_backoff_max_s, a.destination_depth_limit) == (2.0, 10.0, 4)
    assert load_settings(REPO_ROOT / "deploy" / "edgelab.example.toml").async_ == AsyncSettings()


@pytest.mark.parametrize(("table", "key"), [
    ({"retry_backoff_scale": -1}, "async.retry_backoff_scale"),
    ({"retry_backoff_scale": "fast"}, "async.retry_backoff_scale"),
    ({"delivery_concurrency": 0}, "async.delivery_concurrency"),
    ({"delivery_concurrency": 1.5}, "async.delivery_concurrency"),
    ({"throttle_backoff_base_s": 10, "throttle_backoff_max_s": 5}, "async.throttle_backoff_max_s"),
    ({"poll_interval_s": 0}, "async.poll_interval_s"),
    ({"unknown": 1}, "async.unknown"),
])
def test_errors_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings({"async": table})
    assert key in str(exc.value)
