"""Give cacheable responses a Cache-Control when the origin sent none (attach to origin-response).

Without Cache-Control or Expires CloudFront falls back to the behavior's Default TTL (24 h unless
configured); this sets explicit, shorter lifetimes instead, and the result is what gets cached.
"""

DEFAULT_MAX_AGE = 300  # successful and redirect responses
ERROR_MAX_AGE = 10  # 4xx/5xx: retry the origin soon


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    if "cache-control" in headers or "expires" in headers:
        return response
    max_age = DEFAULT_MAX_AGE if int(response["status"]) < 400 else ERROR_MAX_AGE
    headers["cache-control"] = [{"key": "Cache-Control", "value": f"public, max-age={max_age}"}]
    return response
