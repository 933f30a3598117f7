"""Origin groups through a real POP: a behavior targeting a group fails over to the secondary on a listed status and
on a refused connection (GET), not on an unlisted status and not for a POST; the origin-request function runs again
for the secondary and sees it as its origin; the secondary's answer is cached under the request's key and the next
request starts at the primary again."""

from __future__ import annotations

from typing import Any

from tests.cdn.scripted_origin import ORIGIN_DOMAIN, ScriptedOrigin
from tests.e2e.conftest import OR, EdgeStack, assoc, behavior_config, distribution_config, with_associations

SECONDARY = "backup.origin.example"
SEEN = """
def handler(event, context):
    request = event['Records'][0]['cf']['request']
    domain = request['origin']['custom']['domainName']
    request['headers']['x-seen-origin'] = [{'key': 'X-Seen-Origin', 'value': domain}]
    return request
"""


def _config(default: dict[str, Any], dead_primary_port: int | None = None) -> dict[str, Any]:
    cfg = distribution_config(default={**default, "TargetOriginId": "g"})["DistributionConfig"]
    o1 = cfg["Origins"]["Items"][0]
    o2 = {**o1, "Id": "o2", "DomainName": SECONDARY}
    cfg["Origins"] = {"Quantity": 2, "Items": [o1, o2]}
    cfg["OriginGroups"] = {"Quantity": 1, "Items": [{
        "Id": "g", "FailoverCriteria": {"StatusCodes": {"Quantity": 2, "Items": [500, 503]}},
        "Members": {"Quantity": 2, "Items": [{"OriginId": "o1"}, {"OriginId": "o2"}]}}]}
    return {"DistributionConfig": cfg}


async def test_failover_on_status_and_the_function_runs_again(edge: EdgeStack) -> None:
    backup = await ScriptedOrigin().start()
    edge.extra_origins[SECONDARY] = backup
    await edge.function("seen", SEEN)
    for o, body in ((edge.origin, b"primary"), (backup, b"secondary")):
        o.script("/ok", body=body, headers={"Cache-Control": "max-age=60"})
        o.script("/down", status=503 if o is edge.origin else 200, body=body, headers={"Cache-Control": "max-age=60"})
        o.script("/gone", status=404 if o is edge.origin else 200, body=body)
        o.script("/form", status=500 if o is edge.origin else 200, body=body)
    default = with_associations(behavior_config(methods=("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")),
                                [assoc(OR, "seen")])
    await edge.start(config=_config(default), origins={SECONDARY: backup})
    assert (await edge.get("/ok"))[2] == b"primary" and backup.hits["/ok"] == 0
    s, h, b = await edge.get("/down")
    assert (s, b, h["X-Cache"]) == (200, b"secondary", "Miss from cloudfront")
    assert edge.origin.requests["/down"][-1].header("X-Seen-Origin") == ORIGIN_DOMAIN
    assert backup.requests["/down"][-1].header("X-Seen-Origin") == SECONDARY  # origin-request ran again
    assert backup.requests["/down"][-1].header("Host") == SECONDARY
    s, h, b = await edge.get("/down")
    assert (s, b, h["X-Cache"]) == (200, b"secondary", "Hit from cloudfront")  # cached under the request's key
    s, _, _ = await edge.get("/gone")
    assert s == 404 and backup.hits["/gone"] == 0  # 404 is not in the group's criteria
    s, _, _ = await edge.request("POST", "/form", data=b"x=1")
    assert s == 500 and backup.hits["/form"] == 0  # only GET, HEAD and OPTIONS fail over
    await backup.stop()


async def test_failover_when_the_primary_refuses_connections(edge: EdgeStack) -> None:
    backup = await ScriptedOrigin().start()
    backup.script("/ok", body=b"secondary", headers={"Cache-Control": "no-store"})
    edge.origin.script("/ok", body=b"primary", headers={"Cache-Control": "no-store"})
    await edge.start(config=_config(behavior_config()), origins={SECONDARY: backup})
    await edge.origin.stop()  # the primary now refuses connections
    s, _, b = await edge.get("/ok")
    assert (s, b) == (200, b"secondary")
    await backup.stop()
