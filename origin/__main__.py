"""``python -m origin [--host 127.0.0.1] [--port 8000]``: run the demo origin until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from aiohttp import web

from origin.app import make_app


async def serve(host: str, port: int) -> None:
    """Run the demo origin on host:port until cancelled."""
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        logging.getLogger("origin").info("demo origin listening on http://%s:%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m origin", description="edgelab demo origin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency, but the origin works without it
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port))


if __name__ == "__main__":
    main()
