"""Shutdown with a grace period, shared by the invocation core's components.

:class:`edge.tasks.TaskOwner` cancels its tasks when closed (:meth:`~edge.tasks.TaskOwner.aclose`); a component
that must first let them finish (the pool's environment stops, the deliverer's in-flight events) waits with
:func:`wait_idle`, then closes its owner.
"""

from __future__ import annotations

import asyncio

from edge.tasks import TaskOwner

__all__ = ["wait_idle"]

POLL_S = 0.005


async def wait_idle(owner: TaskOwner, timeout_s: float) -> bool:
    """Wait until ``owner`` runs no task, at most ``timeout_s`` seconds (checked every 5 ms); True when it did.
    Cancels nothing."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout_s
    while len(owner):
        if loop.time() >= give_up:
            return False
        await asyncio.sleep(POLL_S)
    return True
