"""Entry point of the stack's server processes: ``python -m edge.control.stack.node {control|pop|tier} ...``.

Each process runs exactly one event loop (uvloop) and owns everything it starts: the LambdaService (and
through it the executor's zygote and workers), the aiohttp runners, background tasks. SIGTERM triggers an
orderly shutdown; PR_SET_PDEATHSIG makes the kernel deliver SIGTERM if the supervisor dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("edgelab.node")


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGTERM us when our parent exits (no orphans after a kill -9 of the supervisor). ``parent``: the
    pid the parent had before the call; if it is gone already (we were orphaned before asking), SIGTERM now."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge.control.stack.node")
    p.add_argument("role", choices=["control", "pop", "tier"])
    p.add_argument("--name", help="POP name (pop role)")
    p.add_argument("--region", help="the region of a tier node (tier role: its regional edge cache)")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--settings")
    p.add_argument("--distribution")
    p.add_argument("--origin")
    p.add_argument("--pop", action="append", default=[])
    p.add_argument("--api-port", type=int)
    p.add_argument("--origin-port", type=int, default=8000)
    p.add_argument("--watch", action="store_true")
    p.add_argument("--realistic-cold-starts", action="store_true")
    p.add_argument("--log-level", default="INFO")
    return p


async def _run_until_signalled(main_coro_factory: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await main_coro_factory(stop)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from edge.control.stack.logview import configure_serve_logging

    label = args.name or args.region
    role = f"{args.role}{'-' + label if label else ''}"
    configure_serve_logging(args.log_level, f"%(asctime)s {role} %(name)s %(levelname)s %(message)s",
                            Path(args.state_dir), role)
    die_with_parent()
    from edge.control.stack.config import load_stack_config

    cfg = load_stack_config(state_dir=args.state_dir, settings=args.settings, distribution=args.distribution,
                            pop_overrides=args.pop, api_port=args.api_port, origin_port=args.origin_port,
                            origin=args.origin)
    if args.realistic_cold_starts:  # `edgelab serve --realistic-cold-starts`: [lambda] realistic_cold_starts
        import dataclasses

        lam = dataclasses.replace(cfg.settings.lambda_, realistic_cold_starts=True)
        cfg = dataclasses.replace(cfg, settings=dataclasses.replace(cfg.settings, lambda_=lam))
    if args.role == "control":
        from edge.control.stack.control_node import run_control

        factory = lambda stop: run_control(cfg, stop, watch=args.watch)  # noqa: E731
    elif args.role == "tier":
        from edge.control.stack.tier_node import run_tier_node

        factory = lambda stop: run_tier_node(cfg, args.region, stop, watch=args.watch)  # noqa: E731
    else:
        from edge.control.stack.pop_node import run_pop_node

        factory = lambda stop: run_pop_node(cfg, args.name, stop, watch=args.watch)  # noqa: E731
    import uvloop

    uvloop.run(_run_until_signalled(factory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
