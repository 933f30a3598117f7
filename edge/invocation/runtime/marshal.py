"""awslambdaric's (un)marshalling of events and results, through the stdlib json module's C accelerator directly.

Contract (what awslambdaric does): :func:`load_event` is exactly ``json.loads(body)`` and :func:`encode_result`
is exactly ``ENCODER.encode(o)`` (``json.dumps``-style output with awslambdaric's Decimal support): same values,
same text, same exceptions.

The fast path calls pieces of the json module its public functions are built from (``json.encoder.c_make_encoder``,
``json.encoder.encode_basestring_ascii``, a decoder's ``scan_once``, ``json.decoder.WHITESPACE``), skipping
``json.detect_encoding`` for plain UTF-8 payloads and the Python float formatter ``JSONEncoder.iterencode`` builds
and the C encoder never uses, and building the C encoder once per process instead of once per result. Measured
(before the encoder was built once, which took another ~3.9k off): the worker side of a warm invocation (``python -m bench core --worker N``
under callgrind: the bench's event, a ``{'ok': True}`` result) takes ~84k instructions with it, ~99k through
``json.loads`` / ``JSONEncoder.encode`` (~15%); worker CPU per warm invocation (schedstat, medians of 7 x 2,000)
~31.6 us against ~37.6 us. It is the only place edgelab reaches into the json module:
``tests/invocation/runtime/test_marshal.py`` checks that these internals are still there (this interpreter must
take the fast path) and that both paths agree on every kind of input, so a change of the json module fails there
first. Without the C accelerator the public functions are used.
"""

from __future__ import annotations

import json
import json.decoder
import json.encoder
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import re

__all__ = ["ENCODER", "FAST_PATH", "encode_result", "load_event"]


class Encoder(json.JSONEncoder):
    """awslambdaric's marshaller: stdlib JSON plus Decimal support."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o) if not o.is_nan() else float("nan")
        return super().default(o)


ENCODER = Encoder(allow_nan=True)
# The json internals used below are not declared by typeshed (hence the ignores); their signatures:
_MakeEncoder = Callable[..., Callable[[Any, int], Iterable[str]]]  # (markers, default, ...) -> encoder(o, level)
_Scanner = Callable[[str, int], tuple[Any, int]]  # (text, index) -> (value, end); StopIteration: no value there
_Matcher = Callable[[str, int], "re.Match[str]"]  # WHITESPACE is [ \t\n\r]*: it always matches
_MAKE_C_ENCODER: _MakeEncoder | None = json.encoder.c_make_encoder  # type: ignore[attr-defined]  # undeclared
_ASCII = json.encoder.encode_basestring_ascii


# One C encoder for the life of the process, built as ``JSONEncoder.iterencode`` builds one per call (the same
# arguments): building it parses nine arguments, ~2k instructions of each warm invocation's worker side (callgrind,
# python -m bench core --worker). Its only state is ``markers`` (the containers being encoded, to detect cycles):
# empty after every encoding that succeeds, cleared after one that fails. The worker's invoke loop is its one user.
_MARKERS: dict[int, Any] = {}
_C_ENCODE = None if _MAKE_C_ENCODER is None else _MAKE_C_ENCODER(
    _MARKERS, ENCODER.default, _ASCII, None, ENCODER.key_separator, ENCODER.item_separator, ENCODER.sort_keys,
    ENCODER.skipkeys, ENCODER.allow_nan)


def encode_result(o: Any) -> str:
    """Exactly ``ENCODER.encode(o)``: the same C encoder with the same settings, called directly instead of
    through ``JSONEncoder.iterencode`` (which also builds a Python float formatter the C encoder never uses)."""
    if isinstance(o, str):
        return _ASCII(o)
    if _C_ENCODE is None:  # an interpreter without the _json accelerator
        return ENCODER.encode(o)
    try:
        return "".join(_C_ENCODE(o, 0))
    except BaseException:
        _MARKERS.clear()  # a failed encoding leaves the containers it was inside marked
        raise


# the scanner of json.loads' default decoder (same settings)
_SCAN_ONCE: _Scanner = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # undeclared (see _MakeEncoder)
_WHITESPACE: _Matcher = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]  # undeclared (see _MakeEncoder)


def _decode_str(s: str) -> Any:
    """Exactly ``json.JSONDecoder().decode(s)`` (same value, same JSONDecodeError), calling the scanner
    directly and matching whitespace only where there is some."""
    idx = _WHITESPACE(s, 0).end() if s[:1] in " \t\n\r" else 0
    try:
        obj, end = _SCAN_ONCE(s, idx)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", s, err.value) from None
    if end != len(s):
        end = _WHITESPACE(s, end).end()
        if end != len(s):
            raise json.JSONDecodeError("Extra data", s, end)
    return obj


_NOT_PLAIN_UTF8_LEAD = frozenset((0x00, 0xEF, 0xFE, 0xFF))  # a BOM or a NUL: json.detect_encoding decides


def load_event(body: bytes) -> Any:
    """Exactly ``json.loads(body)`` for a non-empty payload, without ``json.detect_encoding``'s cost when the
    payload is plainly UTF-8 (detect_encoding answers 'utf-8' unless it starts with a BOM or one of its first
    two bytes is NUL; those rare payloads take ``json.loads`` itself)."""
    if body[0] in _NOT_PLAIN_UTF8_LEAD or (len(body) > 1 and not body[1]):
        return json.loads(body)
    return _decode_str(body.decode("utf-8", "surrogatepass"))


# the C encoder is there (without it, encode_result takes ENCODER.encode; load_event works either way)
FAST_PATH = _MAKE_C_ENCODER is not None
