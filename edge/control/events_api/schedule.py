"""EventBridge schedule expressions: ``rate(value unit)`` and AWS's six-field ``cron(...)``, and when they fire
next. Pure (takes ``after``, returns a time); UTC, minute resolution, as EventBridge schedules.

https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html

- ``rate(1 minute)``, ``rate(5 minutes)``, ``rate(1 hour)``, ``rate(12 hours)``, ``rate(1 day)``,
  ``rate(7 days)``: a positive integer; the singular unit for 1, the plural otherwise. A rate rule first fires
  one period after it was created (or enabled), then every period.
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: minutes 0-59, hours 0-23, day-of-month 1-31,
  month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT (1 = Sunday), year 1970-2199; wildcards ``,`` ``-`` ``*``
  ``/`` in every field, ``?`` in day-of-month or day-of-week (exactly one of the two must be ``?``), ``L`` (last
  day of the month; alone in day-of-week: Saturday, the week's last day; ``5L``: the month's last Thursday),
  ``W`` in day-of-month (``3W``: the weekday nearest the 3rd, within the month; ``LW``: the month's last
  weekday), ``#`` in day-of-week (``3#2``: the month's second Tuesday; only one such expression in the field).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Cron", "Rate", "Schedule", "ScheduleError", "parse_schedule"]

MONTHS = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
LAST_YEAR = 2199
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


class ScheduleError(ValueError):
    """The expression is not a valid schedule expression (the message says why)."""


@dataclass(frozen=True, slots=True)
class Rate:
    minutes: int

    def next_after(self, after: dt.datetime, anchor: dt.datetime) -> dt.datetime:
        """The first ``anchor + k * period`` (k >= 1) strictly after ``after``."""
        period = dt.timedelta(minutes=self.minutes)
        if after < anchor + period:
            return anchor + period
        k = (after - anchor) // period + 1
        return anchor + k * period


DayMatch = Callable[[int, int, int], bool]  # (year, month, day) -> fires that day


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day: DayMatch

    def next_after(self, after: dt.datetime, anchor: dt.datetime | None = None) -> dt.datetime | None:
        """The first firing time strictly after ``after`` (UTC), or None if the expression never fires again."""
        start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        year, month, day = start.year, start.month, start.day
        first_day = True
        while year <= LAST_YEAR:
            if year not in self.years:
                year, month, day, first_day = year + 1, 1, 1, False
                continue
            if month not in self.months:
                month, day, first_day = month + 1, 1, False
                if month > 12:
                    year, month = year + 1, 1
                continue
            days_in_month = calendar.monthrange(year, month)[1]
            while day <= days_in_month:
                if self.day(year, month, day):
                    found = self._time_of_day(start if first_day else None)
                    if found is not None:
                        return dt.datetime(year, month, day, found[0], found[1], tzinfo=dt.UTC)
                day, first_day = day + 1, False
            month, day = month + 1, 1
            if month > 12:
                year, month = year + 1, 1
        return None

    def _time_of_day(self, not_before: dt.datetime | None) -> tuple[int, int] | None:
        for hour in sorted(self.hours):
            if not_before is not None and hour < not_before.hour:
                continue
            for minute in sorted(self.minutes):
                if not_before is not None and hour == not_before.hour and minute < not_before.minute:
                    continue
                return hour, minute
        return None


Schedule = Rate | Cron


def parse_schedule(expression: str) -> Schedule:
    """A parsed ``rate(...)`` or ``cron(...)``; :class:`ScheduleError` names what is wrong."""
    text = expression.strip()
    m = _RATE.match(text)
    if m is not None:
        value, unit = int(m.group(1)), m.group(2)
        if value < 1:
            raise ScheduleError("Parameter ScheduleExpression is not valid: a rate must be a positive number.")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"Parameter ScheduleExpression is not valid: use the singular unit for 1 and the "
                                f"plural otherwise (rate(1 {unit.rstrip('s')}), rate({max(value, 2)} "
                                f"{unit.rstrip('s')}s)).")
        return Rate(value * _UNIT_MINUTES[unit.rstrip("s")])
    m = _CRON.match(text)
    if m is None:
        raise ScheduleError("Parameter ScheduleExpression is not valid: expected rate(value unit) or "
                            "cron(minutes hours day-of-month month day-of-week year).")
    fields = m.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(f"Parameter ScheduleExpression is not valid: a cron expression has six fields, got "
                            f"{len(fields)}.")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("Parameter ScheduleExpression is not valid: exactly one of day-of-month and "
                            "day-of-week must be '?'.")
    return Cron(minutes=_field(minute, 0, 59, "minutes"), hours=_field(hour, 0, 23, "hours"),
                months=_field(month, 1, 12, "month", MONTHS), years=_field(year, 1970, LAST_YEAR, "year"),
                day=_day_of_month(dom) if dow == "?" else _day_of_week(dow))


def _value(token: str, names: dict[str, int] | None, what: str) -> int:
    if names is not None and token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise ScheduleError(f"Parameter ScheduleExpression is not valid: {token!r} in the {what} field.")
    return int(token)


def _field(text: str, low: int, high: int, what: str, names: dict[str, int] | None = None) -> frozenset[int]:
    """``*``, ``a``, ``a-b``, ``a/step``, ``a-b/step``, ``*/step`` and lists of them."""
    out: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"Parameter ScheduleExpression is not valid: bad increment in {part!r} "
                                    f"({what}).")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, names, what), _value(b, names, what)
        else:
            first = _value(base, names, what)
            last = high if slash else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise ScheduleError(f"Parameter ScheduleExpression is not valid: {part!r} is outside {low}-{high} "
                                f"({what}).")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _weekday(year: int, month: int, day: int) -> int:
    """1 = Sunday ... 7 = Saturday (EventBridge's numbering)."""
    return (dt.date(year, month, day).isoweekday() % 7) + 1


def _nearest_weekday(year: int, month: int, target: int) -> int:
    last = calendar.monthrange(year, month)[1]
    target = min(target, last)
    wd = _weekday(year, month, target)
    if wd == 7:  # Saturday: the Friday before, or the Monday after when the 1st is a Saturday
        return target - 1 if target > 1 else target + 2
    if wd == 1:  # Sunday: the Monday after, or the Friday before at the month's end
        return target + 1 if target < last else target - 2
    return target


def _day_of_month(text: str) -> DayMatch:
    if text == "L":
        return lambda y, m, d: d == calendar.monthrange(y, m)[1]
    if text == "LW":
        return lambda y, m, d: d == _nearest_weekday(y, m, calendar.monthrange(y, m)[1])
    if text.endswith("W"):
        target = text[:-1]
        if not target.isdigit() or not 1 <= int(target) <= 31:
            raise ScheduleError(f"Parameter ScheduleExpression is not valid: {text!r} in the day-of-month field.")
        n = int(target)
        return lambda y, m, d: d == _nearest_weekday(y, m, n)
    days = _field(text, 1, 31, "day-of-month")
    return lambda y, m, d: d in days


def _day_of_week(text: str) -> DayMatch:
    if "#" in text:
        if "," in text:
            raise ScheduleError("Parameter ScheduleExpression is not valid: with '#' the day-of-week field takes "
                                "one expression.")
        day_text, _, nth_text = text.partition("#")
        weekday = _value(day_text, DAYS, "day-of-week")
        if not 1 <= weekday <= 7 or not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise ScheduleError(f"Parameter ScheduleExpression is not valid: {text!r} in the day-of-week field.")
        nth = int(nth_text)
        return lambda y, m, d: _weekday(y, m, d) == weekday and (d - 1) // 7 + 1 == nth
    if text == "L":
        return lambda y, m, d: _weekday(y, m, d) == 7
    if text.endswith("L"):
        weekday = _value(text[:-1], DAYS, "day-of-week")
        if not 1 <= weekday <= 7:
            raise ScheduleError(f"Parameter ScheduleExpression is not valid: {text!r} in the day-of-week field.")
        return lambda y, m, d: _weekday(y, m, d) == weekday and d + 7 > calendar.monthrange(y, m)[1]
    days = _field(text, 1, 7, "day-of-week", DAYS)
    return lambda y, m, d: _weekday(y, m, d) in days
