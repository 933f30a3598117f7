"""HTTP Basic authentication in front of the whole distribution (attach to viewer-request).

Lambda@Edge functions cannot have environment variables, so the credentials live in the code (in a
real deployment: a hash, or a config file bundled with the package).
"""

import base64
import hmac

USERNAME = "edge"
PASSWORD = "lab"
REALM = "edgelab"
_EXPECTED = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    supplied = request["headers"].get("authorization", [{"value": ""}])[0]["value"]
    if hmac.compare_digest(supplied.encode(), _EXPECTED.encode()):
        return request
    return {
        "status": "401",
        "statusDescription": "Unauthorized",
        "headers": {
            "www-authenticate": [{"key": "WWW-Authenticate", "value": f'Basic realm="{REALM}", charset="UTF-8"'}],
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
        },
        "body": "Unauthorized\n",
    }
