"""Add security headers to every response (attach to origin-response, or to viewer-response).

On origin-response the headers are cached with the object; on viewer-response they are added on every
request (but viewer-response does not run for origin errors >= 400).
"""

SECURITY_HEADERS = {
    "strict-transport-security": ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    "content-security-policy": (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'",
    ),
    "x-content-type-options": ("X-Content-Type-Options", "nosniff"),
    "x-frame-options": ("X-Frame-Options", "DENY"),
    "referrer-policy": ("Referrer-Policy", "strict-origin-when-cross-origin"),
    "permissions-policy": ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, (key, value) in SECURITY_HEADERS.items():
        headers[name] = [{"key": key, "value": value}]
    return response
