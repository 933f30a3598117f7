"""A viewer's X-Amzn-Trace-Id reaches a Lambda@Edge function as ``_X_AMZN_TRACE_ID`` through a real POP."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import VR, assoc

SOURCE = """
import json, os

def handler(event, context):
    return {"status": "200", "body": json.dumps({"trace": os.environ.get("_X_AMZN_TRACE_ID")})}
"""
HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


async def test_viewer_trace_header_reaches_the_edge_function(edge: Any) -> None:
    version = await edge.function("traced", SOURCE)
    await edge.start(associations=[assoc(VR, "traced", version)])
    status, _, body = await edge.get("/x", headers={"X-Amzn-Trace-Id": HEADER})
    assert status == 200 and json.loads(body) == {"trace": HEADER}
    status, _, body = await edge.get("/y")
    assert status == 200 and json.loads(body) == {"trace": None}
