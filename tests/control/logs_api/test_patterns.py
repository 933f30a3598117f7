"""CloudWatch filter patterns (FilterAndPatternSyntax.html examples)."""

from __future__ import annotations

import pytest

from edge.control.logs_api.patterns import PatternError, compile_pattern

LINES = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[WARN 300] Internal Server Error",
    "INFO all good",
]


def matching(pattern: str, lines: list[str] = LINES) -> list[int]:
    m = compile_pattern(pattern)
    return [i for i, line in enumerate(lines) if m(line)]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("", [0, 1, 2, 3, 4, 5]),
    ("ERROR", [0, 1, 2, 3]),
    ("ERROR ARGUMENTS", [2, 3]),
    ("?ERROR ?WARN", [0, 1, 2, 3, 4]),
    ("ERROR -ARGUMENTS", [0, 1]),
    ('"Internal Server Error"', [4]),
    ('"internal server error"', []),  # case-sensitive
    ("%ERROR 4[01][0-9]%", [0, 1, 2]),
    ("%^INFO%", [5]),
])
def test_terms_phrases_and_regex(pattern: str, expected: list[int]) -> None:
    assert matching(pattern) == expected


JSON_LINES = [
    '{"eventType": "UpdateTrail", "latency": 150, "ok": true, "user": {"id": 7, "name": "ana"}, "tags": ["a", "b"]}',
    '{"eventType": "CreateTrail", "latency": 50, "ok": false, "user": {"id": 8, "name": null}}',
    '{"eventType": "DeleteTrail", "latency": "900"}',
    "not json at all",
]


@pytest.mark.parametrize(("pattern", "expected"), [
    ('{ $.eventType = "UpdateTrail" }', [0]),
    ("{ $.eventType = UpdateTrail }", [0]),
    ('{ $.eventType = "*Trail" }', [0, 1, 2]),
    ('{ $.eventType != "UpdateTrail" }', [1, 2]),
    ("{ $.latency > 100 }", [0, 2]),
    ("{ $.latency <= 50 }", [1]),
    ("{ $.latency = 150 }", [0]),
    ("{ $.user.id = 7 }", [0]),
    ("{ $.tags[1] = b }", [0]),
    ("{ $.ok IS TRUE }", [0]),
    ("{ $.ok IS FALSE }", [1]),
    ("{ $.user.name IS NULL }", [1]),
    ("{ $.user NOT EXISTS }", [2]),
    ('{ ($.latency > 100) && ($.eventType = "DeleteTrail") }', [2]),
    ('{ $.latency < 60 || $.eventType = "UpdateTrail" }', [0, 1]),
])
def test_json_patterns(pattern: str, expected: list[int]) -> None:
    assert matching(pattern, JSON_LINES) == expected


ACCESS = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534',
    '127.0.0.1 - bob [10/Oct/2000:13:50:35 -0700] "GET /index.html HTTP/1.0" 500 80',
]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("[ip, identity, user, timestamp, request, status_code, size]", [0, 1, 2]),
    ("[ip, identity, user = frank, timestamp, request, status_code = 4*, size]", [1]),
    ("[..., status_code = 500, size]", [2]),
    ("[ip, ..., size > 1000]", [0, 1]),
    ("[ip, identity, user, timestamp, request, status_code = 200 || status_code = 500, size]", [0, 2]),
    ("[ip, user]", []),
])
def test_space_delimited(pattern: str, expected: list[int]) -> None:
    assert matching(pattern, ACCESS) == expected


@pytest.mark.parametrize("pattern", [
    '"unterminated', "{ $.a = 1", "{ a = 1 }", "{ $.a > x }", "{ $.a = }", "{ $.a IS MAYBE }", "[a, b",
    "%(%", '{ ($.a = 1 }', "[a, , b]",
])
def test_bad_patterns_are_named(pattern: str) -> None:
    with pytest.raises(PatternError, match="Invalid filter pattern"):
        compile_pattern(pattern)
