"""A byte that is not UTF-8 in a header, through a CloudFront function (the data-path issue's item 5 for CloudFront
Functions): the function sees the value read as ISO-8859-1 ("URI, query string, and headers encoding" applies to
all edge functions), a header it leaves alone reaches the origin as the viewer sent it, and the POP never answers
500 for it (it did: the engine refused the string)."""

from __future__ import annotations

import asyncio

from tests.e2e.test_cloudfront_functions import V2, VR, VRS, CffPop, cff, fa  # noqa: F401  (cff is a fixture)

ECHO = """function handler(event) {
  var h = event.request.headers['x-raw'];
  event.request.headers['x-seen'] = {value: h ? h.value.length + ':' + encodeURIComponent(h.value) : 'none'};
  return event.request;
}"""
STAMP = """function handler(event) {
  var h = event.response.headers['x-origin-raw'];
  event.response.headers['x-fn-saw'] = {value: h ? h.value.length + ':' + encodeURIComponent(h.value) : 'none'};
  return event.response;
}"""


async def _raw_get(port: int, path: str, extra: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n")
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_non_utf8_header_bytes_reach_functions_as_iso_8859_1(cff: CffPop) -> None:  # noqa: F811
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    cff.origin.script("/b", body=b"B", headers={"Cache-Control": "max-age=60", "X-Origin-Raw": "ok"})
    cff.function("echo", ECHO, V2)
    cff.function("stamp", STAMP, V2)
    await cff.start(functions=[fa(VR, "echo"), fa(VRS, "stamp")])
    assert cff.pop is not None
    answer = await _raw_get(cff.pop.port, "/a", b"X-Raw: caf\xe9\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    seen = cff.origin.requests["/a"][0]
    assert seen.header("X-Seen") == "4:caf%C3%A9"  # one character per byte, é as the function saw it
    assert seen.header("X-Raw").encode("latin-1") == b"caf\xe9"  # untouched: the viewer's byte (the origin's raw bytes)
    # a plain ASCII request still goes through unchanged
    plain = await _raw_get(cff.pop.port, "/b", b"X-Raw: plain\r\n")
    assert plain.startswith(b"HTTP/1.1 200 ") and b"X-Fn-Saw: 2:ok" in plain
