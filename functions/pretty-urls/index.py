"""Serve /path/ and /path from /path/index.html (attach to origin-request).

Only the object fetched from the origin changes; the viewer keeps the pretty URL and the cache key
stays the pretty URL too.
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri.endswith("/"):
        request["uri"] = uri + "index.html"
    elif "." not in uri.rsplit("/", 1)[-1]:
        request["uri"] = uri + "/index.html"
    return request
