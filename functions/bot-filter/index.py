"""Refuse known bad bots by User-Agent (attach to viewer-request)."""

import re

BLOCKED_AGENTS = re.compile(r"(?:badbot|evilscraper|scrapy|python-requests|masscan|zgrab)", re.IGNORECASE)


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    agents = [h["value"] for h in request["headers"].get("user-agent", [])]
    if not any(BLOCKED_AGENTS.search(agent) for agent in agents):
        return request
    return {
        "status": "403",
        "statusDescription": "Forbidden",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
        "body": "Access denied\n",
    }
