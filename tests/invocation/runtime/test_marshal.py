"""The worker's (un)marshalling (edge.invocation.runtime.marshal) is awslambdaric's: ``json.loads`` of the event
bytes, ``json.dumps``-style text with Decimal support for results. Its fast path through the json module's
internals must give exactly what the public functions give (same value or same exception type and message) on
every kind of input, and must be the path this interpreter takes: a change of the json module fails here."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.invocation.runtime import marshal


class _Odd:
    pass


_circular: list = []
_circular.append(_circular)


def test_the_fast_path_is_taken() -> None:
    """If the json module stops exposing its C encoder here, the fast path silently becomes the public one:
    say so instead (then re-measure, and drop the module if the difference is gone)."""
    assert marshal.FAST_PATH
    assert type(marshal._SCAN_ONCE).__module__ == "_json"  # the C scanner json.loads itself uses


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
    assert marshal.encode_result(result) == text


@pytest.mark.parametrize(("result", "error"), [
    ({(1, 2): 3}, TypeError), (_Odd(), TypeError), ({"a": {1, 2}}, TypeError), (_circular, ValueError),
])
def test_encode_result_rejects_what_json_rejects(result: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        marshal.encode_result(result)


def test_a_failed_encoding_leaves_nothing_behind() -> None:
    """The encoder is built once: a failure deep inside containers must not leave them marked as being encoded
    (the next encoding of the same objects would be refused as circular)."""
    inner: list = [1, _Odd()]
    outer = {"a": [inner]}
    with pytest.raises(TypeError):
        marshal.encode_result(outer)
    inner.pop()
    assert marshal.encode_result(outer) == json.dumps(outer) == '{"a": [[1]]}'
    with pytest.raises(ValueError, match="Circular"):
        marshal.encode_result(_circular)
    assert marshal.encode_result([_circular[:0]]) == "[[]]"


@pytest.mark.parametrize("payload", [
    b"{}", b'{"a":[1,2.5,null,true]}', '{"é":"☃"}'.encode(), b"\xef\xbb\xbf{\"a\":1}", '{"a":1}'.encode("utf-16"),
    '{"a":1}'.encode("utf-32-be"), b"NaN", b' {"x": -Infinity}', b"12345678901234567890123", b'{"a":1,"a":2}',
])
def test_load_event_is_json_loads(payload: bytes) -> None:
    assert repr(marshal.load_event(payload)) == repr(json.loads(payload))


@pytest.mark.parametrize("payload", [b"[1", b"\xff\xfe", b'"a\x01b"', b"1 2", b'{"a" 1}'])
def test_load_event_errors_are_value_errors(payload: bytes) -> None:
    with pytest.raises(ValueError):  # the worker turns these into Runtime.UnmarshalError
        marshal.load_event(payload)


def _outcome(fn: Any, arg: Any) -> tuple:
    try:
        value = fn(arg)
    except Exception as e:  # the exception is the outcome being compared
        return ("error", type(e), str(e))
    # repr: NaN != NaN, and -0.0 == 0.0 would hide a sign difference
    return ("ok", repr(value))


EVENTS = [
    b"{}", b"1", b'"a"', b'{"a":[1,2.5,null,true]}', '{"é":"☃"}'.encode(), b"\xef\xbb\xbf{\"a\":1}",
    '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-16-le"), '{"a":1}'.encode("utf-16-be"),
    '{"a":1}'.encode("utf-32"), '{"a":1}'.encode("utf-32-le"), '{"a":1}'.encode("utf-32-be"),
    b"[1", b"\xff\xfe", b"\x00", b"1\x00", b"\x00\x00", b'"\xed\xa0\x80"', b'"\\ud800"', b'"\xc3"', b"NaN",
    b' {"x": -Infinity}', b"12345678901234567890123", b'{"a":1,"a":2}', b'"a\x01b"', b"\xef\xbb", b"\xef",
    b"\xfe\xff\x00{", b"  ", b"1e400", b" 1 ", b"1 x", b"\n{}\r\n", b"1 2", b"\t", b"{} ", b"]", b'{"a" 1}',
]


@pytest.mark.parametrize("payload", EVENTS)
def test_load_event_matches_json_loads(payload: bytes) -> None:
    assert _outcome(marshal.load_event, payload) == _outcome(json.loads, payload)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=1, max_size=12))
def test_load_event_matches_json_loads_on_any_bytes(payload: bytes) -> None:
    assert _outcome(marshal.load_event, payload) == _outcome(json.loads, payload)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_load_event_matches_json_loads_on_json_documents(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        payload = text.encode("utf-8", "surrogatepass")
        assert _outcome(marshal.load_event, payload) == _outcome(json.loads, payload)


RESULTS = [
    {"ok": True}, "plain", "é☃\ud800", 1, 10**30, 1.5, -0.0, math.nan, math.inf, -math.inf, None, True,
    (1, 2), [Decimal("1.5"), Decimal("NaN"), Decimal("-0")], {"a": {1: 2, None: 3, 1.5: 4, False: 5}},
    {(1, 2): 3}, _Odd(), {"a": {1, 2}}, _circular, {"deep": [[[{"x": ["y", 2.25]}]]]},
]


@pytest.mark.parametrize("result", RESULTS, ids=range(len(RESULTS)))
def test_encode_result_matches_the_marshaller(result: Any) -> None:
    assert _outcome(marshal.encode_result, result) == _outcome(marshal.ENCODER.encode, result)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_encode_result_matches_the_marshaller_on_json_values(value: Any) -> None:
    assert _outcome(marshal.encode_result, value) == _outcome(marshal.ENCODER.encode, value)
