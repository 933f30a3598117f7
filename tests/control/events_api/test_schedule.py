"""EventBridge schedule expressions (the examples of eb-scheduled-rule-pattern.html and eb-cron-expressions.html)."""

from __future__ import annotations

import datetime as dt

import pytest

from edge.control.events_api.schedule import Rate, ScheduleError, parse_schedule

UTC = dt.UTC


def t(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fires(expr: str, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    sched = parse_schedule(expr)
    out = []
    at = after
    for _ in range(n):
        nxt = sched.next_after(at, after)
        assert nxt is not None
        out.append(nxt)
        at = nxt
    return out


START = t(2026, 12, 4, 10, 7)  # a Friday


@pytest.mark.parametrize(("expr", "expected"), [
    ("cron(0 10 * * ? *)", [t(2026, 12, 5, 10, 0), t(2026, 12, 6, 10, 0), t(2026, 12, 7, 10, 0)]),
    ("cron(15 12 * * ? *)", [t(2026, 12, 4, 12, 15), t(2026, 12, 5, 12, 15), t(2026, 12, 6, 12, 15)]),
    ("cron(0 18 ? * MON-FRI *)", [t(2026, 12, 4, 18, 0), t(2026, 12, 7, 18, 0), t(2026, 12, 8, 18, 0)]),
    ("cron(0 8 1 * ? *)", [t(2027, 1, 1, 8, 0), t(2027, 2, 1, 8, 0), t(2027, 3, 1, 8, 0)]),
    ("cron(0/15 * * * ? *)", [t(2026, 12, 4, 10, 15), t(2026, 12, 4, 10, 30), t(2026, 12, 4, 10, 45)]),
    ("cron(0/5 8-17 ? * MON-FRI *)", [t(2026, 12, 4, 10, 10), t(2026, 12, 4, 10, 15), t(2026, 12, 4, 10, 20)]),
    ("cron(0 9 ? * 2#1 *)", [t(2026, 12, 7, 9, 0), t(2027, 1, 4, 9, 0), t(2027, 2, 1, 9, 0)]),  # first Monday
    ("cron(0 0 L * ? *)", [t(2026, 12, 31, 0, 0), t(2027, 1, 31, 0, 0), t(2027, 2, 28, 0, 0)]),
    ("cron(0 12 ? * 6L *)", [t(2026, 12, 25, 12, 0), t(2027, 1, 29, 12, 0), t(2027, 2, 26, 12, 0)]),  # last Friday
    ("cron(0 12 ? * L *)", [t(2026, 12, 5, 12, 0), t(2026, 12, 12, 12, 0), t(2026, 12, 19, 12, 0)]),  # Saturdays
    ("cron(0 12 15W * ? *)", [t(2026, 12, 15, 12, 0), t(2027, 1, 15, 12, 0), t(2027, 2, 15, 12, 0)]),
    ("cron(0 12 LW * ? *)", [t(2026, 12, 31, 12, 0), t(2027, 1, 29, 12, 0), t(2027, 2, 26, 12, 0)]),
    ("cron(30 6 1W * ? *)", [t(2027, 1, 1, 6, 30), t(2027, 2, 1, 6, 30), t(2027, 3, 1, 6, 30)]),
    ("cron(0 0 1 JAN,JUL ? 2027-2028)", [t(2027, 1, 1, 0, 0), t(2027, 7, 1, 0, 0), t(2028, 1, 1, 0, 0)]),
    ("cron(10 7 ? * SUN,SAT *)", [t(2026, 12, 5, 7, 10), t(2026, 12, 6, 7, 10), t(2026, 12, 12, 7, 10)]),
])
def test_cron_next_times(expr: str, expected: list[dt.datetime]) -> None:
    assert fires(expr, START) == expected


def test_w_stays_in_the_month() -> None:
    # 2027-05-01 is a Saturday: 1W is Monday the 3rd, not the Friday of April
    assert fires("cron(0 0 1W * ? 2027)", t(2027, 4, 20), 1) == [t(2027, 5, 3, 0, 0)]
    # 2027-10-31 is a Sunday: LW is Friday the 29th
    assert fires("cron(0 0 LW * ? 2027)", t(2027, 10, 20), 1) == [t(2027, 10, 29, 0, 0)]


def test_never_again() -> None:
    assert parse_schedule("cron(0 0 30 FEB ? *)").next_after(START) is None
    assert parse_schedule("cron(0 0 1 1 ? 2020)").next_after(START) is None


@pytest.mark.parametrize(("expr", "minutes"), [("rate(1 minute)", 1), ("rate(5 minutes)", 5), ("rate(1 hour)", 60),
                                                ("rate(12 hours)", 720), ("rate(1 day)", 1440), ("rate(7 days)", 10080)])
def test_rates(expr: str, minutes: int) -> None:
    rate = parse_schedule(expr)
    assert rate == Rate(minutes)
    anchor = START
    assert rate.next_after(anchor, anchor) == anchor + dt.timedelta(minutes=minutes)
    later = anchor + dt.timedelta(minutes=minutes * 10, seconds=1)  # missed periods are skipped, the grid kept
    assert rate.next_after(later, anchor) == anchor + dt.timedelta(minutes=minutes * 11)


@pytest.mark.parametrize("expr", [
    "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(5 weeks)", "rate(minutes)",
    "cron(0 10 * * *)", "cron(0 10 * * * *)", "cron(0 10 ? * ? *)", "cron(60 10 * * ? *)", "cron(0 24 * * ? *)",
    "cron(0 0 32 * ? *)", "cron(0 0 ? * 8 *)", "cron(0 0 ? * 3#1,6#3 *)", "cron(0 0 ? * 3#6 *)", "cron(0/0 * * * ? *)",
    "cron(0 0 * 13 ? *)", "cron(0 0 * * ? 1969)", "cron(0 0 40W * ? *)", "every day", "cron(0 0 5-1 * ? *)",
])
def test_invalid_expressions_are_named(expr: str) -> None:
    with pytest.raises(ScheduleError, match="ScheduleExpression is not valid"):
        parse_schedule(expr)
