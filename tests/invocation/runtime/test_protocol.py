"""The worker-channel frame format: byte layout (spoken by the worker and, later, other runtimes' shims) and
reassembly from a byte stream cut anywhere."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.invocation.runtime import protocol


def test_frame_layout_is_fixed() -> None:
    parts = protocol.encode({"t": protocol.K_RESULT, "d": 1.5, "rss": 2048}, b'{"ok": true}', b"log\n")
    meta = b'{"t":"o","d":1.5,"rss":2048}'
    assert b"".join(parts) == struct.pack("<III", len(meta), 12, 4) + meta + b'{"ok": true}' + b"log\n"
    assert protocol.HEADER_SIZE == 12
    assert protocol.frame_size(b"".join(parts)) == 12 + len(meta) + 12 + 4


_META = st.fixed_dictionaries({"t": st.sampled_from(["i", "r", "e", "o", "f", "m"]), "n": st.integers(0, 10**6)})
_FRAMES = st.lists(st.tuples(_META, st.binary(max_size=40), st.binary(max_size=40)), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_FRAMES, st.lists(st.integers(1, 64), max_size=20))
def test_reader_reassembles_frames_cut_anywhere(frames: list, cuts: list[int]) -> None:
    stream = b"".join(b"".join(protocol.encode(m, body, log)) for m, body, log in frames)
    got: list = []
    reader = protocol.FrameReader(got.append)
    pos = 0
    for size in [*cuts, len(stream)]:
        reader.feed(stream[pos:pos + size])
        pos += size
        if pos >= len(stream):
            break
    assert got == frames and not reader.buffer


def test_reader_reports_what_it_still_needs() -> None:
    data = b"".join(protocol.encode({"t": "o"}, b"x" * 10))
    got: list = []
    reader = protocol.FrameReader(got.append)
    assert reader.missing() == protocol.HEADER_SIZE
    reader.feed(data[:5])
    assert got == [] and reader.missing() == protocol.HEADER_SIZE - 5
    reader.feed(data[5:14])
    assert got == [] and reader.missing() == len(data) - 14
    reader.feed(data[14:])
    assert got == [({"t": "o"}, b"x" * 10, b"")] and not reader.buffer
