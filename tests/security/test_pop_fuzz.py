"""A bounded HTTP fuzz test of a real POP over raw sockets on 127.0.0.1 (issue 18).

A seeded generator makes ~800 malformed requests: request-line variants (methods, targets, versions, HTTP/0.9,
overlong lines, control bytes), header variants (no colon, space before the colon, obs-fold, NUL, bare CR/LF,
oversize), framing variants (Content-Length / Transfer-Encoding conflicts, bad chunk sizes, truncated bodies),
request-smuggling combinations (an ambiguous request followed by ``GET /smuggled``) and binary junk. They are sent
in concurrent batches (bounded in count and, through short POP timeouts, in time). Asserted for every answer: it is
nothing (a close) or HTTP/1.x responses with valid status lines; a smuggling case gets at most one response and
the origin never sees ``/smuggled``; afterwards the POP serves a normal request, holds no viewer connection and
its process has the file descriptors it had before.
"""

from __future__ import annotations

import asyncio
import os
import random
import re

from edge.cdn.config.settings import ViewerSettings
from tests.cdn.scripted_origin import ScriptedOrigin, behavior_config, distribution_config
from tests.cdn.server.test_pop_limits import get_ok, pop_with, until

SEED = 18
CASES = 800
BATCH = 80
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
VALID_HEAD = re.compile(rb"HTTP/1\.[01] [1-5]\d\d [^\r\n]*\r\n")
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE", b"get", b"G\x00T",
           b"", b"GET GET", b"\xff\xfe", b"X" * 300]
TARGETS = [b"/", b"/a?b=c", b"*", b"http://evil.example/x", b"//x", b"/%00", b"/a b", b"/\x7f", b"/\xe9", b"",
           b"/" + b"a" * 9000, b"/" + b"b" * 70_000, b"/#frag", b"/..%2f..%2fetc/passwd", b"\\x"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/1.10", b"http/1.1", b"HTTP/1",
            b"HTTP/1.1\x00", b""]
EOLS = [b"\r\n", b"\n", b"\r", b"\r\r\n"]


def _headers(rng: random.Random) -> list[bytes]:
    pool = [b"Host: a", b"Host: a", b"Host: b", b"Host:", b"X-A: 1", b"X-A : 1", b" X-Folded: 1", b"X-B: a\x00b",
            b"NoColon", b": empty-name", b"X-C: \xe9\xff", b"X-D: " + b"v" * 40_000, b"Expect: 100-continue",
            b"Expect: nonsense", b"Connection: close", b"Connection: keep-alive, Upgrade", b"Upgrade: websocket",
            b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 1e3",
            b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", b"X-E:\tv\t", b"X-F: a\rb"]
    return [rng.choice(pool) for _ in range(rng.randrange(0, 6))]


def _chunked_body(rng: random.Random) -> bytes:
    return rng.choice([b"5\r\nhello\r\n0\r\n\r\n", b"5\r\nhel", b"zz\r\nhello\r\n0\r\n\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n",
                       b"ffffffffffffffffff\r\nx\r\n", b"5\nhello\n0\n\n", b"-1\r\n\r\n", b"0\r\nX-Trailer: v\r\n\r\n",
                       b"5\r\nhello0\r\n\r\n"])


def smuggling_case(rng: random.Random) -> bytes:
    """An ambiguously framed request followed by ``GET /smuggled``."""
    framings = [
        [b"Content-Length: 6", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: chunked", b"Content-Length: 6"],
        [b"Content-Length: 6", b"Content-Length: 0"],
        [b"Content-Length: 0, 6"],
        [b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"],
        [b"Transfer-Encoding: xchunked"],
        [b"Transfer-Encoding : chunked"],
        [b"Transfer-Encoding:\x0bchunked"],
        [b"Transfer-Encoding: chunked, identity"],
        [b"Transfer-Encoding: identity, chunked", b"Content-Length: 6"],
        [b"Content-Length: +6"],
        [b"Content-Length: 0x6"],
        [b"Content-Length:  6 6"],
        [b" Transfer-Encoding: chunked"],
        [b"X: y\nTransfer-Encoding: chunked"],
    ]
    method = rng.choice([b"POST", b"GET", b"PUT"])
    head = b"\r\n".join([method + b" /x HTTP/1.1", b"Host: a", *rng.choice(framings)]) + b"\r\n\r\n"
    return head + rng.choice([b"0\r\n\r\n", b"6\r\n", b"", b"1\r\nZ\r\n0\r\n\r\n"]) + SMUGGLED


def malformed_case(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # binary junk
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    eol = rng.choice(EOLS) if rng.random() < 0.3 else b"\r\n"
    line = b" ".join(p for p in (rng.choice(METHODS), rng.choice(TARGETS), rng.choice(VERSIONS)) if p or rng.random() < 0.5)
    if kind == 1:  # request line only
        return line + eol + (eol if rng.random() < 0.7 else b"")
    head = eol.join([line, *_headers(rng)]) + eol + eol
    if kind == 2:  # chunked body variants
        return head.replace(eol + eol, eol + b"Transfer-Encoding: chunked" + eol + eol, 1) + _chunked_body(rng)
    if kind == 3:  # truncated body
        return head.replace(eol + eol, eol + b"Content-Length: 100" + eol + eol, 1) + b"x" * rng.randrange(0, 99)
    cut = rng.randrange(1, max(2, len(head)))
    return head[:cut] if rng.random() < 0.3 else head


async def send(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = bytearray()
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(3):
            while chunk := await reader.read(65536):
                out += chunk
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return bytes(out)


def check_answer(case: bytes, answer: bytes, smuggling: bool) -> None:
    if not answer:
        return  # closed without an answer
    assert VALID_HEAD.match(answer), (case[:120], answer[:120])
    responses = STATUS.findall(answer)
    if smuggling:
        assert len(responses) <= 1, (case[:200], answer[:400])


async def test_fuzzed_requests_never_break_the_pop() -> None:
    rng = random.Random(SEED)
    viewer = ViewerSettings(max_connections=1000, header_timeout_s=0.3, body_timeout_s=0.3, keepalive_timeout_s=0.3)
    methods = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
    config = distribution_config(default=behavior_config(methods=methods))
    async with ScriptedOrigin() as origin:
        origin.script("/alive", body=b"yes", headers={"Cache-Control": "max-age=60"})
        origin.script("/x", body=b"x", headers={"Cache-Control": "no-store"})
        async with pop_with(origin, viewer, config) as running:
            assert (await get_ok(running.port)).endswith(b"yes")
            baseline = len(os.listdir("/proc/self/fd"))
            cases = [(smuggling_case(rng), True) if rng.random() < 0.3 else (malformed_case(rng), False)
                     for _ in range(CASES)]
            async with asyncio.timeout(60):
                for i in range(0, CASES, BATCH):
                    batch = cases[i:i + BATCH]
                    answers = await asyncio.gather(*(send(running.port, c) for c, _ in batch))
                    for (case, smuggling), answer in zip(batch, answers, strict=True):
                        check_answer(case, answer, smuggling)
            assert origin.hits["/smuggled"] == 0
            reply = await get_ok(running.port)
            assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"yes")
            guard = running.state.guard
            await until(lambda: not guard.conns, 3, "every fuzz connection closed by the POP")
            await until(lambda: len(os.listdir("/proc/self/fd")) <= baseline + 2, 3, "descriptors back to baseline")
