"""Issue 14, the items that need a Lambda@Edge function, through a real POP and real function workers: what
the function sees of a header byte that is not UTF-8 (item 5), and which origins an origin-request function may
return (item 7)."""

from __future__ import annotations

import asyncio

from tests.cdn.scripted_origin import ScriptedOrigin, behavior_config, distribution_config
from tests.e2e.conftest import OR, VR, EdgeStack, assoc, with_associations

ECHO_NAME = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    name = request["headers"]["x-name"][0]["value"]
    return {"status": "200", "body": name,
            "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}]}}
"""


async def test_a_header_byte_that_is_not_utf8_reaches_the_function_as_latin1(edge: EdgeStack) -> None:
    """`X-Name: caf\\xe9` (ISO-8859-1) on a behavior with a viewer-request function: Lambda@Edge converts what is
    not UTF-8 to UTF-8 before the function sees it (contract §2.3), so the function reads "café", where the event
    encoder used to refuse the byte (500 and a traceback per request)."""
    await edge.function("echo", ECHO_NAME)
    await edge.start(associations=[assoc(VR, "echo")])
    assert edge.pop is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.pop.port)
    try:
        writer.write(b"GET /p HTTP/1.1\r\nHost: edge.test\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(20):
            data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == "café".encode()


SWITCH_PORT = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["origin"]["custom"]["port"] = {port}
    return request
"""


async def test_origin_request_may_return_the_ip_origin_the_distribution_gave_it(edge: EdgeStack) -> None:
    """The distribution's origin is `127.0.0.1` (the loader accepts it); an origin-request function that changes
    only its port returns that same origin, which is not a new IP-address origin: no LambdaValidationError."""
    other = edge.extra_origins["other"] = await ScriptedOrigin().start()
    other.script("/p", body=b"from the other port")
    await edge.function("port", SWITCH_PORT.format(port=other.port))
    cfg = distribution_config(default=with_associations(behavior_config(), [assoc(OR, "port")]))
    origin = cfg["DistributionConfig"]["Origins"]["Items"][0]
    origin["DomainName"] = "127.0.0.1"
    origin["CustomOriginConfig"]["HTTPPort"] = edge.origin.port
    await edge.start(config=cfg)
    status, headers, body = await edge.get("/p")
    assert (status, body) == (200, b"from the other port"), headers.get("X-Cache")
    assert edge.origin.hits["/p"] == 0
