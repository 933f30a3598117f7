"""bench.procs helpers that need no load generator: the payload server (a real socket on 127.0.0.1) and the
parsing of wrk's output."""

from __future__ import annotations

import aiohttp
import pytest

from bench.procs import start_payload_server, wrk_rps


@pytest.mark.parametrize("fixed", [False, True])
async def test_payload_server_reports_the_port_it_listens_on(fixed: bool) -> None:
    port = 0
    if fixed:  # a port chosen by the caller comes back as it is
        runner, port = await start_payload_server(b"probe")
        await runner.cleanup()
    runner, bound = await start_payload_server(b"payload", port)
    try:
        assert bound > 0 and (not fixed or bound == port)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{bound}/any/path") as resp:
            assert resp.status == 200
            assert await resp.read() == b"payload"
            assert resp.headers["Cache-Control"] == "max-age=3600"
    finally:
        await runner.cleanup()


def test_wrk_rps() -> None:
    assert wrk_rps("  Latency ...\nRequests/sec:  12345.67\nTransfer/sec: 1MB\n") == 12345.67
    with pytest.raises(RuntimeError, match="no Requests/sec line"):
        wrk_rps("unable to connect to 127.0.0.1:1 Connection refused\n")
