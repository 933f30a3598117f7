"""Smoke: one viewer-request function through the real POP (fixture sanity, timing)."""

from tests.e2e.conftest import VR, EdgeStack, assoc, fn_timings

ADD_HEADER = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-added"] = [{"key": "X-Added", "value": "yes"}]
    return request
"""


async def test_viewer_request_adds_header(edge: EdgeStack) -> None:
    await edge.function("add", ADD_HEADER)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc(VR, "add")])
    status, headers, body = await edge.get("/a")
    assert (status, body) == (200, b"a")
    assert edge.origin.requests["/a"][-1].header("X-Added") == "yes"
    t = fn_timings(headers)
    assert [(x["event"], x["name"], x["version"], x["state"]) for x in t] == [(VR, "add", "1", "cold")]
