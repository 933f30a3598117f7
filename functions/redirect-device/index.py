"""Send mobile viewers to the mobile site under /m (attach to origin-request).

CloudFront-Is-Mobile-Viewer is only set on the origin side, and only when a cache or origin request
policy includes it.
"""

MOBILE_PREFIX = "/m"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    is_mobile = headers.get("cloudfront-is-mobile-viewer", [{"value": "false"}])[0]["value"] == "true"
    uri = request["uri"]
    if not is_mobile or uri == MOBILE_PREFIX or uri.startswith(MOBILE_PREFIX + "/"):
        return request

    location = MOBILE_PREFIX + uri
    if request["querystring"]:
        location += "?" + request["querystring"]
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": location}]},
    }
