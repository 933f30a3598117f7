"""Replace origin error bodies with a branded page (attach to origin-response).

The status code is kept (so clients and caches still see the error), the page is cached briefly.
"""

from html import escape

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{status} {reason} - Example</title></head>
<body style="font-family: sans-serif; text-align: center; margin-top: 10%">
<h1>{status}</h1>
<p>{message}</p>
<p><a href="/">Back to the home page</a></p>
</body>
</html>
"""
MESSAGES = {
    404: "We couldn't find that page.",
    403: "You don't have access to this page.",
}
DEFAULT_MESSAGE = "Something went wrong on our side. Please try again in a moment."


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    status = int(response["status"])
    if status < 400:
        return response
    message = MESSAGES.get(status, DEFAULT_MESSAGE if status >= 500 else "That request didn't work.")
    response["body"] = PAGE.format(status=status, reason=escape(response["statusDescription"]), message=message)
    response["bodyEncoding"] = "text"
    headers = response["headers"]
    headers["content-type"] = [{"key": "Content-Type", "value": "text/html; charset=utf-8"}]
    headers["cache-control"] = [{"key": "Cache-Control", "value": "max-age=10"}]
    headers.pop("content-encoding", None)  # the new body is not the origin's (possibly gzipped) one
    return response
