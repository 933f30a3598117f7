"""Response triggers on origin responses too large to cache (streamed through): the function sees no body; a
replaced body or a failing function must release the origin stream (no connection left open)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tests.e2e.conftest import ORS, VRS, EdgeStack, assoc, fn_events

BIG = b"y" * (8 << 20)  # above the harness's 1 MB max object size: streamed, never stored

RESPONSE_FN = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    response = cf["response"]
    uri = cf["request"]["uri"]
    response["headers"]["x-saw-body"] = [{"key": "X-Saw-Body", "value": str("body" in response)}]
    if uri == "/replace":
        response["body"] = "small replacement"
    elif uri == "/raise":
        raise RuntimeError("no")
    elif uri == "/invalid":
        response["headers"]["via"] = [{"key": "Via", "value": "1.1 someone-else"}]
    return response
"""


class StreamingOrigin:
    """Handlers that stream BIG in chunks and record which responses are still being written: a stream the
    POP neither reads nor closes blocks its writer forever (the leak this file guards against)."""

    def __init__(self) -> None:
        self.writing = 0

    async def handler(self, request: web.Request, n: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Cache-Control": "no-store", "Content-Type": "application/octet-stream"})
        resp.content_length = len(BIG)
        await resp.prepare(request)
        self.writing += 1
        try:
            for i in range(0, len(BIG), 65536):
                await resp.write(BIG[i:i + 65536])
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the POP closed the connection: the stream was released
        finally:
            self.writing -= 1
        return resp


async def _run(edge: EdgeStack, event: str) -> None:
    await edge.function("fn", RESPONSE_FN)
    streaming = StreamingOrigin()
    for path in ("/pass", "/replace", "/raise", "/invalid"):
        edge.origin.script(path, handler=streaming.handler)
    await edge.start(associations=[assoc(event, "fn")])
    for _ in range(2):
        s, h, b = await edge.get("/pass")
        assert (s, len(b), h["X-Saw-Body"], fn_events(h)) == (200, len(BIG), "False", [event])
        s, h, b = await edge.get("/replace")
        assert (s, b) == (200, b"small replacement")
        s, h, _ = await edge.get("/raise")
        assert (s, h["X-Cache"]) == (503, "LambdaExecutionError from cloudfront")
        s, h, _ = await edge.get("/invalid")
        assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
    assert edge.origin.hits.total() == 8
    # every abandoned origin stream was released: no origin response is still stuck being written
    for _ in range(100):
        if streaming.writing == 0:
            break
        await asyncio.sleep(0.01)
    assert streaming.writing == 0


async def test_origin_response_on_streamed_bodies(edge: EdgeStack) -> None:
    await _run(edge, ORS)


async def test_viewer_response_on_streamed_bodies(edge: EdgeStack) -> None:
    await _run(edge, VRS)
