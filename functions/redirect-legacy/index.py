"""Permanent redirects for moved pages, answered at the edge (attach to viewer-request)."""

# Exact old path -> new path.
MOVED = {
    "/about-us.html": "/about/",
    "/contact.php": "/contact/",
    "/blog/index.php": "/blog/",
}
# Old prefix -> new prefix (the rest of the path is kept).
MOVED_PREFIXES = (
    ("/docs/v1/", "/docs/latest/"),
    ("/old-blog/", "/blog/"),
)


def _target(uri):
    if uri in MOVED:
        return MOVED[uri]
    for old, new in MOVED_PREFIXES:
        if uri.startswith(old):
            return new + uri[len(old):]
    return None


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    target = _target(request["uri"])
    if target is None:
        return request
    if request["querystring"]:
        target += "?" + request["querystring"]
    return {
        "status": "301",
        "statusDescription": "Moved Permanently",
        "headers": {
            "location": [{"key": "Location", "value": target}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=86400"}],
        },
    }
