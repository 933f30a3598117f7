"""Redirect viewers to their country's section of the site (attach to origin-request).

CloudFront-Viewer-Country is added by CloudFront after viewer-request, so this must run on the origin
side (and the cache policy must include the header, otherwise every country shares one cached answer).
"""

COUNTRY_PREFIXES = {"DE": "/de", "AT": "/de", "FR": "/fr", "JP": "/jp"}


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    country = request["headers"].get("cloudfront-viewer-country", [{"value": ""}])[0]["value"]
    prefix = COUNTRY_PREFIXES.get(country.upper())
    if prefix is None or request["uri"] == prefix or request["uri"].startswith(prefix + "/"):
        return request

    location = prefix + request["uri"]
    if request["querystring"]:
        location += "?" + request["querystring"]
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {
            "location": [{"key": "Location", "value": location}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
        },
    }
