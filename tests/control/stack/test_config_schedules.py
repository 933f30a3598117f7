"""The stack configuration validates declared schedule expressions before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cdn.config.policies import ConfigError


def test_stack_config_refuses_a_bad_expression(tmp_path: Path) -> None:
    from edge.control.stack.config import load_stack_config

    settings = tmp_path / "s.toml"
    settings.write_text('[[schedules]]\nname = "a"\nschedule = "cron(0 0 * * * *)"\nfunction = "f"\n')
    with pytest.raises(ConfigError) as exc:
        load_stack_config(state_dir=str(tmp_path / "state"), settings=str(settings), distribution=None)
    assert exc.value.path == "schedules[0].schedule" and "exactly one of day-of-month and day-of-week" in str(exc.value)
