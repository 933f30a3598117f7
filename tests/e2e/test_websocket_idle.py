"""The relayed WebSocket's idle limit (``edge.cdn.server.websocket.IDLE_TIMEOUT_S``, shortened here): a server
pushing to a viewer that never sends (a dev server's hot reload) is not idle; a connection silent both ways is
closed, the viewer seeing a close frame."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import WSMsgType, web

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config

USE_ORIGIN_CC_QS = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"


async def test_one_way_traffic_keeps_it_open_and_silence_both_ways_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.cdn.server import websocket

    monkeypatch.setattr(websocket, "IDLE_TIMEOUT_S", 0.6)

    async def push(request, n):  # type: ignore[no-untyped-def]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(8):  # 8 x 0.2 s = 1.6 s of pushes, longer than the idle limit
            await ws.send_str(f"tick {i}")
            await asyncio.sleep(0.2)
        async for _ in ws:  # then silence until the POP closes
            pass
        return ws

    async with ScriptedOrigin() as origin:
        origin.script("/ws", handler=push)
        dist = distribution_config(default=behavior_config(cache_policy=USE_ORIGIN_CC_QS,
                                                           origin_request_policy=ALL_VIEWER))
        async with PopHarness(origin, dist) as pop, pop.session.ws_connect(f"{pop.url}/ws", autoping=False) as ws:  # type: ignore[union-attr]
            ticks = [(await ws.receive(timeout=5)).data for _ in range(8)]
            quiet_from = time.monotonic()
            closing = await ws.receive(timeout=10)
            closed_after = time.monotonic() - quiet_from
    assert ticks == [f"tick {i}" for i in range(8)]  # the viewer never sent: still relayed past the idle limit
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert 0.3 < closed_after < 5  # closed for silence both ways, after (about) the idle limit
