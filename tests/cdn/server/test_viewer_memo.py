"""Reads parsed before (``ViewerProtocol``'s remembered heads): a protocol that replays remembered heads must hand
its app exactly what one that parses every read hands it.

Two protocols, each under its own real ``ConnectionGuard`` and a recording transport, get the same random byte
streams cut the same random ways: repeated requests (one read each, the same read often several times in a row, so
they are remembered and replayed),
pipelined and split ones, bodies (Content-Length and chunked), ``Expect``, HTTP/1.0, ``Connection: close``,
upgrades, malformed and oversized heads; the app answers some requests at once and some later. Every request the
app sees (its fields, in order), every byte written, the transport's pauses and closes and the guard's state must
be the same; the replaying protocol must have replayed.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from edge.cdn.config.settings import ViewerSettings
from edge.cdn.errors import EdgeError
from edge.cdn.server import viewer
from edge.cdn.server.limits import ConnectionGuard
from edge.cdn.server.viewer import ViewerProtocol, ViewerRequest, viewer_connection
from edge.tasks import TaskOwner


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.events: list[str] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out.append(bytes(data))

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.events.append("eof")
        self.closed = True

    def close(self) -> None:
        self.events.append("close")
        self.closed = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


class _App:
    """A ``ViewerApp`` that records each request and answers at once, or later (a target containing ``later``);
    ``keeping``: it keeps its answer to a ``repeat`` request answered at once, gives it ``again`` as ``respond``
    would answer the request, and declines every third time it is asked."""

    def __init__(self, keeping: bool = False) -> None:
        self.now = 0.0  # the guard's clock: moved by the test, the same for both protocols
        self.guard = ConnectionGuard(ViewerSettings(), clock=lambda: self.now)
        self.handlers = TaskOwner("memo-test")
        self.body_timeout = 30.0
        self.max_body = 64
        self.keeping = keeping
        self.seen: list[tuple[object, ...]] = []
        self.later: list[tuple[ViewerProtocol, bool]] = []
        self.asked = self.given = 0

    def respond(self, conn: ViewerProtocol, req: ViewerRequest) -> bool | None:
        body = b"".join(req.body) if req.body is not None else None
        refusal = type(req.refusal).__name__ if req.refusal is not None else None
        record = (req.method, req.target, req.version, list(req.headers), req.keep_alive, req.upgrade, req.expect,
                  req.complete, refusal, body)
        self.seen.append(record)
        req.headers.append(("X-Changed-By-App", "1"))  # the app owns its request: a replay must not see this
        conn.write(b"R%d %s %s\n" % (len(self.seen), req.method.encode(), req.target.encode()))
        keep = req.refusal is None and req.keep_alive
        if "later" in req.target and req.refusal is None:
            self.later.append((conn, keep))
            return None
        if self.keeping and req.repeat and keep:
            req.kept = record
        return keep

    def again(self, conn: ViewerProtocol, kept: tuple[object, ...]) -> bytes | None:
        self.asked += 1
        if self.asked % 3 == 0:
            return None
        self.given += 1
        self.seen.append(kept)
        return b"R%d %s %s\n" % (len(self.seen), str(kept[0]).encode(), str(kept[1]).encode())

    def parse_error(self, conn: ViewerProtocol, exc: Exception) -> EdgeError:
        return EdgeError(f"{type(exc).__name__}")

    def answer_later(self) -> None:
        pending, self.later = self.later, []
        for conn, keep in pending:
            conn.answered(keep)


REPEATED = [
    b"GET /hit HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hit?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
    b"HEAD /hit HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    b"GET /%C3%A9t%C3%A9 HTTP/1.1\r\nHost: x\r\nX-Raw: caf\xc3\xa9 \xff\r\n\r\n",
    b"\r\nGET /crlf-first HTTP/1.1\r\nHost: x\r\n\r\n",
]
OTHERS = [
    b"GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /old-close HTTP/1.0\r\nHost: x\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"b" * 100,
    b"PUT /expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET /expect-odd HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nrest-of-stream",
    b"GET /bad HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"u" * (viewer.MAX_URL_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /nine\r\n\r\n",
    b"GET /two HTTP/2.0\r\nHost: x\r\n\r\n",
]


def _stream(rng: random.Random) -> list[bytes]:
    """One connection's reads: mostly repeated requests, each in a read of its own, some pipelined or cut."""
    reads: list[bytes] = []
    for _ in range(rng.randint(3, 25)):
        roll = rng.random()
        if reads and rng.random() < 0.5:
            reads.append(reads[-1])  # the same read again (whatever it held)
        elif roll < 0.6:
            reads.append(rng.choice(REPEATED))
        elif roll < 0.75:
            reads.append(rng.choice(REPEATED) + rng.choice(REPEATED))  # two in one read: parsed, not remembered
        elif roll < 0.85:
            data = rng.choice(REPEATED + OTHERS)
            cut = rng.randint(1, len(data) - 1)
            reads.extend((data[:cut], data[cut:]))  # cut anywhere
        else:
            reads.append(rng.choice(OTHERS))
    return reads


def _run(app: _App, reads: list[bytes], rng: random.Random, *, remember: bool = True) -> tuple[object, ...]:
    """One connection's reads through a protocol (``remember=False``: one that parses every read)."""
    saved = viewer.MAX_REMEMBERED_BYTES
    viewer.MAX_REMEMBERED_BYTES = saved if remember else 0  # a connection keeps no read to compare with
    try:
        return _exchange(app, reads, rng)
    finally:
        viewer.MAX_REMEMBERED_BYTES = saved


def _exchange(app: _App, reads: list[bytes], rng: random.Random) -> tuple[object, ...]:
    transport = _Transport()
    outer = viewer_connection(app)
    outer.connection_made(transport)
    for data in reads:
        if transport.closed:
            break
        app.now += 1.0
        outer.data_received(data)
        if rng.random() < 0.5:
            app.now += 0.5
            app.answer_later()
    app.answer_later()
    # the guard's state: the connection's, and when its idle or header deadline is (whatever answered the reads)
    return transport.out, transport.events, outer.state, outer.entered, repr(app.guard.counters), list(
        app.guard.heads.values()), list(app.guard.idles.values())


@pytest.mark.parametrize("seed", range(1, 21))
async def test_a_replayed_head_is_what_parsing_it_gives(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    replays = 0
    replay = ViewerProtocol._replay

    def counted(self: ViewerProtocol, head: viewer.ParsedHead) -> None:
        nonlocal replays
        replays += 1
        replay(self, head)

    monkeypatch.setattr(ViewerProtocol, "_replay", counted)
    rng = random.Random(seed)
    remembering, parsing = _App(keeping=True), _App()
    for _ in range(120):
        reads = _stream(rng)
        seed_later = rng.random()  # when the app answers its pending requests: the same for both
        assert _run(remembering, reads, random.Random(seed_later)) == _run(parsing, reads, random.Random(
            seed_later), remember=False)  # the same answering order, writes, pauses and closes
    assert remembering.seen == parsing.seen
    assert len(remembering.seen) > 250
    assert replays > 60, replays  # the remembered heads were used
    assert remembering.given > 20 and remembering.asked > remembering.given, (remembering.asked, remembering.given)
    await remembering.handlers.aclose()
    await parsing.handlers.aclose()


async def test_a_read_is_replayed_from_its_third_time_on_the_same_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    replayed: list[str] = []
    replay = ViewerProtocol._replay

    def counted(self: ViewerProtocol, head: viewer.ParsedHead) -> None:
        replayed.append(head[1])
        replay(self, head)

    monkeypatch.setattr(ViewerProtocol, "_replay", counted)
    app = _App()
    a, b = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    _run(app, [a, a, a, a, b, a, b, b, b, a + a, a + a, a + a], random.Random(0))
    assert replayed == ["/a", "/a", "/b"]  # the 3rd and 4th a, the 3rd b in a row; two requests in a read: never
    assert [s[1] for s in app.seen] == ["/a"] * 4 + ["/b", "/a"] + ["/b"] * 3 + ["/a"] * 6
    _run(app, [a, a], random.Random(0))
    assert replayed == ["/a", "/a", "/b"]  # a new connection starts with nothing remembered
    big = b"GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * viewer.MAX_REMEMBERED_BYTES + b"\r\n\r\n"
    _run(app, [big] * 4, random.Random(0))
    assert replayed == ["/a", "/a", "/b"]  # longer than MAX_REMEMBERED_BYTES: not kept
    await app.handlers.aclose()
