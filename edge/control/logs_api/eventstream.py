"""The ``application/vnd.amazon.eventstream`` message encoding (what StartLiveTail's response stream is made of).

A message: total length and headers length (big-endian uint32), the CRC32 of those 8 bytes, the headers
(name length u8, name, value type 7 = string, value length u16, value), the payload, the CRC32 of everything
before it (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream).
botocore's ``EventStreamBuffer`` decodes it (the tests use it). Pure.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["encode_message", "event", "exception"]

_STRING = 7


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    block = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        block += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + block + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: bytes) -> bytes:
    """An event message (``initial-response``, or a member of the stream's union such as ``sessionUpdate``)."""
    return encode_message({":message-type": "event", ":event-type": event_type,
                           ":content-type": "application/json"}, payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    """A modeled exception of the stream (e.g. ``SessionTimeoutException``)."""
    return encode_message({":message-type": "exception", ":exception-type": exception_type,
                           ":content-type": "application/json"}, payload)
