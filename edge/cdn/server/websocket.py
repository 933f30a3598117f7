"""WebSocket pass-through: a viewer's upgrade request is relayed to the behavior's origin and, once the origin
accepts it, messages flow both ways until one side closes ("Use WebSockets with CloudFront distributions",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/distribution-working-with.websockets.html).

* The request is admitted like any other (disabled distribution, AllowedMethods, ViewerProtocolPolicy: a
  refusal goes through the normal path, which answers it); functions do not run on it (whether CloudFront runs
  edge functions on the upgrade request is not documented).
* CloudFront relays the upgrade only when the behavior forwards ``Sec-WebSocket-Key`` and
  ``Sec-WebSocket-Version`` (an origin request policy listing them, or AllViewer); otherwise ``Upgrade`` is
  removed like every hop-by-hop header and the request is an ordinary GET (:func:`wants_relay`).
* The handshake to the origin carries what CloudFront forwards for the behavior (``build_origin_request``) and
  the viewer's subprotocols; the origin's choice of subprotocol is the viewer's. An origin that does not
  accept the upgrade has its status answered to the viewer; an unreachable one gets CloudFront's 502 page.
* The POP terminates the WebSocket on both sides (aiohttp), so each side negotiates its own key and extensions;
  messages (text, binary) and the close code are relayed unchanged. A connection idle for
  :data:`IDLE_TIMEOUT_S` is closed (10 minutes: the idle limit AWS support cites; not in the guide).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSMsgType, web

from edge.cdn.errors import EdgeError
from edge.cdn.models import EdgeRequest
from edge.cdn.responses import error_response
from edge.cdn.steps import Exchange
from edge.cdn.steps.origin_request import build_origin_request
from edge.cdn.steps.viewer_request import admit

if TYPE_CHECKING:
    from edge.cdn.config.plan import BehaviorPlan
    from edge.cdn.origin.client import AiohttpOriginClient
    from edge.cdn.steps.context import PopContext

__all__ = ["IDLE_TIMEOUT_S", "relay", "wants_relay"]

IDLE_TIMEOUT_S = 600.0
_HANDSHAKE_ONLY = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                             "sec-websocket-protocol", "sec-websocket-accept", "upgrade", "connection"})


def wants_relay(plan: BehaviorPlan) -> bool:
    """Whether the behavior forwards what a WebSocket handshake needs (see the module docstring)."""
    fw = plan.forwarding
    return fw.forward_all or ("sec-websocket-key" in fw and "sec-websocket-version" in fw)


async def relay(ctx: PopContext, client: AiohttpOriginClient, request: web.BaseRequest, viewer: EdgeRequest,
                request_id: str, started: float) -> web.StreamResponse | None:
    """Relay the WebSocket upgrade ``request`` (``viewer`` as the POP parsed it), or None when the normal path
    answers it (a refusal, or a behavior that does not forward the handshake headers)."""
    ex = Exchange(request=viewer, request_id=request_id, started=started)
    try:
        plan = admit(ctx, ex)
    except EdgeError:
        return None  # the normal path refuses it, the same way
    if not wants_relay(plan):
        return None
    origin = plan.edge_origin
    shaped = build_origin_request(viewer, plan.forwarding, origin, via=ctx.identity.via, request_id=request_id)
    headers = [(k, v) for k, v in shaped.headers if k.lower() not in _HANDSHAKE_ONLY]
    protocols = tuple(p.strip() for k, v in viewer.headers if k.lower() == "sec-websocket-protocol"
                      for p in v.split(",") if p.strip())
    try:
        upstream = await client.websocket(origin, shaped.uri, shaped.querystring, headers, protocols)
    except aiohttp.WSServerHandshakeError as exc:  # the origin answered, without upgrading
        return web.Response(status=exc.status if 200 <= exc.status < 600 else 502, text=exc.message or "")
    except EdgeError as err:
        resp = error_response(err, request_id)
        return web.Response(status=resp.status, body=resp.body, headers=resp.headers)
    try:
        ws = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), autoping=True)
        await ws.prepare(request)
        idle = _Idle(asyncio.get_running_loop().time())
        async with asyncio.TaskGroup() as group:  # both directions; either side closing ends both
            group.create_task(_pump(upstream, ws, idle))
            group.create_task(_pump(ws, upstream, idle))
    finally:
        await upstream.close()
    return ws


class _Idle:
    """When a message last went through a relayed WebSocket, in either direction: the connection is idle only when
    neither side sent anything (a server pushing to a silent viewer, e.g. a dev server's hot reload, is not idle).
    Pings are answered by aiohttp (``autoping``) and do not count."""

    __slots__ = ("last",)

    def __init__(self, now: float) -> None:
        self.last = now


async def _pump(src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, idle: _Idle) -> None:
    """Copy messages from ``src`` to ``dst`` until ``src`` closes (or the connection is idle for
    :data:`IDLE_TIMEOUT_S` in both directions), then close ``dst`` with the same code."""
    loop = asyncio.get_running_loop()
    while True:
        remaining = idle.last + IDLE_TIMEOUT_S - loop.time()
        if remaining <= 0:
            await src.close()
            break
        try:
            msg = await src.receive(timeout=remaining)
        except TimeoutError:
            continue  # the other direction may have moved meanwhile: look at the shared clock again
        idle.last = loop.time()
        if msg.type is WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
            continue
        else:  # CLOSE, CLOSING, CLOSED, ERROR
            break
    if not dst.closed:
        await dst.close(code=src.close_code or aiohttp.WSCloseCode.OK)
