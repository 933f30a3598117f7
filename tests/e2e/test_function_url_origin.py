"""A Lambda function URL domain as a distribution's origin: the POP reaches the local function URL endpoint (the
control port's), the function gets AWS's payload format 2.0 and its response is cached like any origin's."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from edge.control.lambda_api.app import make_lambda_api_app
from tests.cdn.scripted_origin import behavior_config, distribution_config

SOURCE = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"Cache-Control": "max-age=60", "Content-Type": "application/json"},
            "body": json.dumps({"path": event["rawPath"], "query": event.get("queryStringParameters"),
                                "host": event["headers"]["host"], "via": event["headers"].get("via", ""),
                                "version": event["version"], "request": context.aws_request_id})}
"""


async def test_function_url_domain_as_origin(edge: Any) -> None:
    await edge.function("urlfn", SOURCE, publish=False)
    runner = web.AppRunner(make_lambda_api_app(edge.service))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        url = await edge.service.create_function_url_config("urlfn", None, {"AuthType": "NONE"})
        domain = f"{url.url_id}.lambda-url.us-east-1.on.aws"
        config = distribution_config(default=behavior_config())
        origin = config.get("DistributionConfig", config)["Origins"]["Items"][0]
        origin["DomainName"] = domain
        origin["CustomOriginConfig"]["OriginProtocolPolicy"] = "https-only"
        await edge.start(config=config, api_port=port)
        status, headers, body = await edge.get("/items/7?color=red")
        assert status == 200, body
        got = json.loads(body)
        assert got["path"] == "/items/7" and got["query"] == {"color": "red"} and got["version"] == "2.0"
        assert got["host"] == domain and "cloudfront" in got["via"].lower()
        assert headers["X-Cache"] == "Miss from cloudfront"
        status, headers, again = await edge.get("/items/7?color=red")
        assert status == 200 and headers["X-Cache"] == "Hit from cloudfront" and again == body
    finally:
        await runner.cleanup()
