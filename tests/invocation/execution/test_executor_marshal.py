"""The worker (un)marshals like awslambdaric: ``json.loads`` of the event bytes, and ``json.dumps``-style output
with awslambdaric's Decimal support for results (same spacing, NaN/Infinity literals, ASCII escapes, errors)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from edge.invocation.runtime import worker


class _Odd:
    pass


_circular: list = []
_circular.append(_circular)


@pytest.mark.parametrize(("result", "text"), [
    ({"ok": True}, '{"ok": true}'),
    ("plain", '"plain"'),
    ("é☃\ud800", '"\\u00e9\\u2603\\ud800"'),
    (10**30, "1000000000000000000000000000000"),
    (-0.0, "-0.0"),
    (math.nan, "NaN"),
    (-math.inf, "-Infinity"),
    (None, "null"),
    ((1, 2), "[1, 2]"),
    ([Decimal("1.5"), Decimal("NaN"), Decimal("-0")], "[1.5, NaN, -0.0]"),
    ({"a": {1: 2, None: 3, 1.5: 4, False: 5}}, '{"a": {"1": 2, "null": 3, "1.5": 4, "false": 5}}'),
    ({"deep": [[[{"x": ["y", 2.25]}]]]}, '{"deep": [[[{"x": ["y", 2.25]}]]]}'),
])
def test_encode_result_is_awslambdarics_marshaller(result: Any, text: str) -> None:
    assert worker.encode_result(result) == text


@pytest.mark.parametrize(("result", "error"), [
    ({(1, 2): 3}, TypeError), (_Odd(), TypeError), ({"a": {1, 2}}, TypeError), (_circular, ValueError),
])
def test_encode_result_rejects_what_json_rejects(result: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        worker.encode_result(result)


@pytest.mark.parametrize("payload", [
    b"{}", b'{"a":[1,2.5,null,true]}', '{"é":"☃"}'.encode(), b"\xef\xbb\xbf{\"a\":1}", '{"a":1}'.encode("utf-16"),
    '{"a":1}'.encode("utf-32-be"), b"NaN", b' {"x": -Infinity}', b"12345678901234567890123", b'{"a":1,"a":2}',
])
def test_load_event_is_json_loads(payload: bytes) -> None:
    assert repr(worker.load_event(payload)) == repr(json.loads(payload))


@pytest.mark.parametrize("payload", [b"[1", b"\xff\xfe", b'"a\x01b"', b"1 2", b'{"a" 1}'])
def test_load_event_errors_are_value_errors(payload: bytes) -> None:
    with pytest.raises(ValueError):  # the worker turns these into Runtime.UnmarshalError
        worker.load_event(payload)
