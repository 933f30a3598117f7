"""``[[schedules]]`` in the settings TOML: declared EventBridge-style rules (the expression itself is validated by
the control layer when the stack configuration loads)."""

from __future__ import annotations

import pytest

from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import ScheduleDecl, parse_settings


def test_schedules_parse() -> None:
    s = parse_settings({"schedules": [
        {"name": "nightly", "schedule": "cron(0 3 * * ? *)", "function": "report:live", "input": '{"full": true}'},
        {"name": "tick", "schedule": "rate(5 minutes)", "function": "tick", "enabled": False, "description": "d"},
    ]})
    assert s.schedules == (ScheduleDecl("nightly", "cron(0 3 * * ? *)", "report:live", '{"full": true}'),
                           ScheduleDecl("tick", "rate(5 minutes)", "tick", None, False, "d"))


@pytest.mark.parametrize(("doc", "key"), [
    ({"schedules": [{"schedule": "rate(1 day)", "function": "f"}]}, "schedules[0].name"),
    ({"schedules": [{"name": "a", "function": "f"}]}, "schedules[0].schedule"),
    ({"schedules": [{"name": "a", "schedule": "rate(1 day)"}]}, "schedules[0].function"),
    ({"schedules": [{"name": "a", "schedule": "rate(1 day)", "function": "f", "input": "{not json"}]}, "schedules[0].input"),
    ({"schedules": [{"name": "a", "schedule": "rate(1 day)", "function": "f", "color": "red"}]}, "schedules[0].color"),
    ({"schedules": [{"name": "a", "schedule": "rate(1 day)", "function": "f"}] * 2}, "schedules"),
])
def test_schedule_errors_name_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings(doc)
    assert exc.value.path == key

