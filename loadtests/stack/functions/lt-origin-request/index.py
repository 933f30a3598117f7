"""Origin-request function of the origin-request scenario: tags the request sent to the origin."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-edgelab-loadtest"] = [{"key": "X-Edgelab-Loadtest", "value": "origin-request"}]
    return request
