"""Normalise the query string to raise the cache hit ratio (attach to viewer-request).

Query-string order and case are part of CloudFront's cache key (``?b=2&a=1`` and ``?a=1&b=2`` are two
objects). This keeps only the parameters the site uses, lowercases their names and sorts them, so all
equivalent URLs share one cache entry.
"""

from urllib.parse import parse_qsl, quote, urlencode

ALLOWED = frozenset({"page", "q", "sort", "lang"})


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    params = [
        (name.lower(), value)
        for name, value in parse_qsl(request["querystring"], keep_blank_values=True)
        if name.lower() in ALLOWED
    ]
    request["querystring"] = urlencode(sorted(params), quote_via=quote)
    return request
