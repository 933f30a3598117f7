"""Frames between the core and a worker, and control messages between the core and the zygote.

Worker channel (``SOCK_STREAM`` socketpair, one per execution environment). A frame is::

    HEADER = <III  meta_len, body_len, log_len
    meta   = orjson object; key "t" is the frame kind (one of the K_* constants)
    body   = raw bytes (event payload, result payload or error record JSON)
    log    = raw bytes (the worker's stdout/stderr output produced since the previous frame)

Core -> worker: ``K_INVOKE`` meta ``{t, id, dl (deadline, epoch ms), arn, cc (client context JSON or null),
fn (function name override or null)}`` (``cc`` and ``fn`` may be left out: null), body = event payload. Optional
``lg: 1``: answer with the invocation's log record (:mod:`.logformat`: ``pre`` lines, START, the output, END,
REPORT with ``init`` as its Init Duration) in the log part instead of the raw output.

Worker -> core:
- ``K_READY``      Init finished; meta ``{t, rss}`` (KiB); log = Init output.
- ``K_INIT_ERROR`` Init failed; body = error record (requestId ""); log = Init output. The worker then exits.
- ``K_RESULT``     meta ``{t, d (handler ms), rss (peak KiB)}``; body = result JSON; log = output or record.
- ``K_ERROR``      meta ``{t, d, rss, et (errorType), reset (bool: environment must be discarded)}``; body =
                   error record JSON.
- ``K_OOM``        sent by the worker right before it kills itself for exceeding its memory size; meta
                   ``{t, rss}``.

:func:`encode` and :class:`FrameReader` are the only implementation of this format, on both ends.

Zygote control channel (``SOCK_SEQPACKET``: one datagram per message, so no framing): orjson objects.
Core -> zygote: ``{"t": "spawn", "env": id, "cfg": {...}}`` with fds ``[worker_socket, log_memfd]``;
``{"t": "kill", "env": id}``. Zygote -> core: ``{"t": "spawned", "env": id, "pid": n}``,
``{"t": "exit", "env": id, "status": raw wait status, "at": CLOCK_MONOTONIC seconds when reaped}``,
``{"t": "spawn_failed", "env": id, "error": str}``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import orjson

HEADER = struct.Struct("<III")
HEADER_SIZE = HEADER.size

K_INVOKE = "i"
K_READY = "r"
K_INIT_ERROR = "e"
K_RESULT = "o"
K_ERROR = "f"
K_OOM = "m"

CHANNEL_FD = 3  # where a runtime the zygote exec'd finds its channel to the core (zygote ``exec``)
CONTROL_MAX = 1 << 20  # largest control datagram we accept (spawn configs are a few KiB)

dumps = orjson.dumps
loads = orjson.loads

Frame = tuple[dict, bytes, bytes]  # (meta, body, log)


def encode(meta: dict[str, object], body: bytes = b"", log: bytes = b"") -> list[bytes]:
    """Return the frame as buffers for one ``sendmsg``/``writelines`` call (no concatenation copy)."""
    m = dumps(meta)
    return [HEADER.pack(len(m), len(body), len(log)), m, body, log]


def frame_size(header: bytes | bytearray | memoryview) -> int:
    """Total frame length (header included) given at least HEADER_SIZE leading bytes."""
    ml, bl, ll = HEADER.unpack_from(header)
    return HEADER_SIZE + ml + bl + ll


def decode(frame: bytes | memoryview) -> Frame:
    """Split one complete frame into (meta, body, log)."""
    ml, bl, ll = HEADER.unpack_from(frame)
    a = HEADER_SIZE + ml
    b = a + bl
    view = memoryview(frame)
    return loads(view[HEADER_SIZE:a]), bytes(view[a:b]), bytes(view[b : b + ll])


class FrameReader:
    """Reassembles frames from a byte stream, on both ends of the worker channel (the core's asyncio protocol
    and the worker's blocking socket): :meth:`feed` takes whatever one read returned and hands each frame it
    completed, in order, to ``on_frame``. (A callback rather than a returned list: the list and the caller's loop
    over it cost ~400 instructions per frame on each end; callgrind, warm invocations.)

    The common case, one read holding exactly one frame with nothing buffered, is :meth:`whole`: decoded without
    copying the data into the reassembly buffer and returned to the caller, which hands the read to
    :meth:`reassemble` only when that gives None (the worker's invoke loop then skips the callback and its queue:
    ~1.8k instructions per warm invocation, callgrind, ``python -m bench core --worker``)."""

    __slots__ = ("buffer", "on_frame")

    def __init__(self, on_frame: Callable[[Frame], object]) -> None:
        self.on_frame = on_frame
        self.buffer = bytearray()  # bytes received of a frame not complete yet (read it, never write it)

    def missing(self) -> int:
        """How many more bytes the frame being reassembled needs (at least one header when unknown)."""
        buf = self.buffer
        if len(buf) < HEADER_SIZE:
            return HEADER_SIZE - len(buf)
        return frame_size(buf) - len(buf)

    def whole(self, data: bytes) -> Frame | None:
        """The frame ``data`` is, when it is exactly one whole frame and nothing is buffered; else None (the
        caller then passes ``data`` to :meth:`reassemble`)."""
        if not self.buffer and len(data) >= HEADER_SIZE:
            ml, bl, ll = HEADER.unpack_from(data)
            a = HEADER_SIZE + ml
            b = a + bl
            if b + ll == len(data):
                return loads(data[HEADER_SIZE:a]), data[a:b], data[b:]
        return None

    def feed(self, data: bytes) -> None:
        frame = self.whole(data)
        if frame is not None:
            self.on_frame(frame)
            return
        self.reassemble(data)

    def reassemble(self, data: bytes) -> None:
        """:meth:`feed` for a read :meth:`whole` already declined: buffered, each frame it completes handed on."""
        buf = self.buffer
        buf += data
        while len(buf) >= HEADER_SIZE:
            need = frame_size(buf)
            if len(buf) < need:
                break
            frame = decode(bytes(buf[:need]))
            del buf[:need]
            self.on_frame(frame)
