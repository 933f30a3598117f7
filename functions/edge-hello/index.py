"""Answer a few small URLs directly at the edge (attach to viewer-request).

/edge/hello returns a JSON greeting and /robots.txt a robots file, without touching cache or origin.
"""

import json

ROBOTS = "User-agent: *\nDisallow: /private/\n"


def _response(content_type, body, cache_control):
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": content_type}],
            "cache-control": [{"key": "Cache-Control", "value": cache_control}],
        },
        "body": body,
    }


def handler(event, context):
    cf = event["Records"][0]["cf"]
    request = cf["request"]
    if request["uri"] == "/edge/hello":
        body = json.dumps(
            {
                "message": "hello from the edge",
                "clientIp": request["clientIp"],
                "requestId": cf["config"]["requestId"],
                "function": context.function_name,
            }
        )
        return _response("application/json", body, "no-store")
    if request["uri"] == "/robots.txt":
        return _response("text/plain; charset=utf-8", ROBOTS, "max-age=86400")
    return request
