"""Route a request to another custom origin chosen by the X-Backend header (attach to origin-request).

CloudFront does not update Host when the origin changes, so the function sets it too. The header
must be forwarded to the origin side (origin request policy or cache policy).
"""

BACKENDS = {
    "blue": "blue.origin.example",
    "green": "green.origin.example",
}


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    choice = headers.get("x-backend", [{"value": ""}])[0]["value"].strip().lower()
    domain = BACKENDS.get(choice)
    if domain is None:
        return request

    current = request["origin"].get("custom")
    if current is not None:
        current["domainName"] = domain
    else:  # switching an S3 origin to a custom one: give the whole custom origin
        request["origin"] = {
            "custom": {
                "domainName": domain,
                "port": 443,
                "protocol": "https",
                "path": "",
                "sslProtocols": ["TLSv1.2"],
                "readTimeout": 30,
                "keepaliveTimeout": 5,
                "customHeaders": {},
            }
        }
    headers["host"] = [{"key": "Host", "value": domain}]
    return request
