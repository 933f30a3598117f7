"""Pre-started Node.js processes ("spares"), so that a new Node execution environment costs its function's module
load rather than Node's boot (~40-100 ms here; see ``python -m bench node``).

A spare is a :class:`NodeProcess` that has said HELLO and waits for its INIT frame. Spares are keyed by
:class:`NodeLaunch` (what is fixed when ``node`` starts: major, heap flags from MemorySize, ``NODE_OPTIONS``, exec
wrapper). :meth:`SparePool.take` hands out a ready spare of that key, or starts a process on the spot when there is
none (the caller then waits for the boot; the Init Duration it reports includes it), and in both cases starts a
replacement in the background, so the next environment of that key finds one. Only keys that were asked for get
spares; at most ``max_keys`` keys are kept (the least recently used key's spares are stopped), ``per_key`` spares
each, and a key not asked for during the executor's idle TTL loses its spares (:meth:`SparePool.expire`, called by
the executor's reaper, as idle environments expire). A spare that died while waiting (killed from outside,
OOM-killed by the host) is discarded at ``take``.

Background starts are tasks of this pool's :class:`edge.tasks.TaskOwner` (one per key at a time); :meth:`close`
cancels them and stops every spare. Processes start through the ``zygote`` when one is given (the executor's; see
:mod:`.runtime_process`), each with its own slot directory under ``slots_root`` (see :mod:`.node_process`).

The Node binary of a major comes from :class:`NodeInstalls`: found on disk, or installed on first use from its
registry package (:mod:`.node_dist`) in a thread, never on the event loop. Its :meth:`NodeInstalls.state` is what
the Lambda API reports as the function's ``State`` (https://docs.aws.amazon.com/lambda/latest/dg/
functions-states.html): ``Pending`` (StateReasonCode ``Creating``) while the major is being looked for or installed,
``Failed`` (``InternalError``, the reason naming the next step) when the install failed, ``Active`` once it is
there. A failed install is retried when asked for again ``RETRY_AFTER_S`` later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from edge.invocation.execution import node_dist
from edge.invocation.execution.node_process import NodeLaunch, NodeProcess
from edge.invocation.execution.zygote_client import ZygoteClient
from edge.invocation.models import ACTIVE, RuntimeState
from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.invocation.node_spares")

RETRY_AFTER_S = 60.0


@dataclass(slots=True)
class _Resolution:
    checked: asyncio.Event = field(default_factory=asyncio.Event)  # looked for on disk
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # found, installed or failed


class NodeInstalls:
    """The Node.js majors of this process: found on disk or installed in the background (see the module
    docstring). ``install=False`` never downloads (a missing major then fails with the command to run)."""

    def __init__(self, *, install: bool = True) -> None:
        self.install = install
        self._dists: dict[int, node_dist.NodeDist] = {}
        self._failed: dict[int, tuple[str, float]] = {}  # major -> (reason, when)
        self._resolving: dict[int, _Resolution] = {}
        self._tasks = TaskOwner("node-installs")

    def __repr__(self) -> str:
        return (f"<NodeInstalls ready={sorted(self._dists)} resolving={sorted(self._resolving)} "
                f"failed={sorted(self._failed)}>")

    def state(self, major: int) -> RuntimeState:
        """Now, without waiting (the invocation path's check); starts looking for the major if nobody has."""
        if major in self._dists:
            return ACTIVE
        failed = self._failed.get(major)
        if failed is not None and time.monotonic() - failed[1] < RETRY_AFTER_S:
            return RuntimeState("Failed", failed[0], "InternalError")
        self._resolve(major)
        return RuntimeState("Pending", f"The function is being created: Node.js {major} is being installed "
                                       f"(edgelab installs each Node.js major on first use).", "Creating")

    async def check(self, major: int) -> RuntimeState:
        """The state once the disk has been looked at (a thread hop when this process has not yet): Active for
        an installed major, Pending while it installs, Failed if that failed."""
        st = self.state(major)
        res = self._resolving.get(major)
        if st.state == "Pending" and res is not None:
            await res.checked.wait()
            st = self.state(major)
        return st

    async def dist(self, major: int) -> node_dist.NodeDist:
        """The distribution of ``major``, waiting for its install if needed. Raises NodeInstallError."""
        found = self._dists.get(major)
        if found is not None:
            return found
        self._failed.pop(major, None)  # a caller that needs it now: retry at once
        res = self._resolve(major)
        await res.settled.wait()
        found = self._dists.get(major)
        if found is None:
            raise node_dist.NodeInstallError(self._failed.get(major, (f"Node.js {major} is not available", 0))[0])
        return found

    def _resolve(self, major: int) -> _Resolution:
        res = self._resolving.get(major)
        if res is None:
            res = self._resolving[major] = _Resolution()
            self._tasks.spawn(self._run(major, res), key=major, name=f"node{major}-install")
        return res

    async def _run(self, major: int, res: _Resolution) -> None:
        try:
            found = await asyncio.to_thread(node_dist.find, major)
            if found is not None:
                self._dists[major] = found
            res.checked.set()
            if found is None:
                if not self.install:
                    raise node_dist.NodeInstallError(
                        f"Node.js {major} is not installed. Next step: run `python -m "
                        f"edge.invocation.execution.node_dist install {major}`.")
                log.info("installing Node.js %d (first use of nodejs%d.x on this machine)", major, major)
                found = await asyncio.to_thread(node_dist.ensure, major)
                log.info("Node.js %s installed at %s", found.version, found.binary)
            self._dists[major] = found
            self._failed.pop(major, None)
        except Exception as e:
            reason = str(e) if isinstance(e, node_dist.NodeInstallError) else f"{type(e).__name__}: {e}"
            log.warning("Node.js %d is not available: %s", major, reason)
            self._failed[major] = (reason, time.monotonic())
        finally:
            res.checked.set()
            res.settled.set()
            self._resolving.pop(major, None)

    async def close(self) -> None:
        await self._tasks.aclose()


class SparePool:
    def __init__(self, *, per_key: int = 1, max_keys: int = 8, install: bool = True,
                 installs: NodeInstalls | None = None, zygote: ZygoteClient | None = None,
                 slots_root: Path | None = None) -> None:
        self.per_key = per_key
        self.max_keys = max_keys
        self.installs = installs or NodeInstalls(install=install)
        self._own_installs = installs is None
        self.zygote = zygote
        self.slots_root = slots_root
        self._spares: OrderedDict[NodeLaunch, list[NodeProcess]] = OrderedDict()  # LRU order of keys
        self._taken: dict[NodeLaunch, float] = {}  # when each key was last asked for (monotonic)
        self._tasks = TaskOwner("node-spares")
        self._closed = False
        self.started = 0  # processes started (spares and on-the-spot), for tests and introspection
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        keys = ", ".join(f"node{k.major}/{k.memory_mb}MB:{len(v)}" for k, v in self._spares.items())
        return f"<SparePool {keys or 'empty'} hits={self.hits} misses={self.misses}>"

    async def dist(self, major: int) -> node_dist.NodeDist:
        return await self.installs.dist(major)

    async def _spawn(self, launch: NodeLaunch) -> NodeProcess:
        return await NodeProcess.spawn(launch, await self.dist(launch.major), zygote=self.zygote,
                                       slots_root=self.slots_root)

    async def take(self, launch: NodeLaunch) -> NodeProcess:
        """A started process for ``launch`` (a spare when one is ready), and a replacement on its way. Raises
        NodeInstallError (no Node of that major) or RuntimeError (node did not start, e.g. a bad NODE_OPTIONS)."""
        if self._closed:
            raise RuntimeError("the spare pool is closed")
        spares = self._spares.get(launch)
        if spares is None:
            spares = self._spares[launch] = []
            self._evict()
        self._spares.move_to_end(launch)
        self._taken[launch] = time.monotonic()
        proc = None
        while spares:
            candidate = spares.pop()
            if candidate.proc is not None and candidate.proc.alive:
                proc = candidate
                break
            self._tasks.spawn(candidate.stop(graceful=False), name="stop-dead-spare")
        if proc is not None:
            self.hits += 1
        else:
            self.misses += 1
            proc = await self._spawn(launch)
            self.started += 1
        self.refill(launch)
        return proc

    def refill(self, launch: NodeLaunch) -> None:
        """Start spares for ``launch`` in the background up to ``per_key`` (no-op when one is already starting)."""
        if not self._closed and launch in self._spares:
            self._tasks.spawn(self._fill(launch), key=launch, name=f"fill-node{launch.major}-{launch.memory_mb}")

    async def _fill(self, launch: NodeLaunch) -> None:
        while not self._closed and len(self._spares.get(launch, ())) < self.per_key:
            try:
                proc = await self._spawn(launch)
            except (RuntimeError, OSError, node_dist.NodeInstallError) as e:
                log.warning("could not pre-start Node.js for %s: %s", launch, e)
                return
            self.started += 1
            spares = self._spares.get(launch)
            if spares is None or self._closed:  # evicted or closed meanwhile
                await proc.stop(graceful=False)
                return
            spares.append(proc)

    def _evict(self) -> None:
        while len(self._spares) > self.max_keys:
            key, victims = self._spares.popitem(last=False)
            self._taken.pop(key, None)
            for proc in victims:
                self._tasks.spawn(proc.stop(graceful=False), name="stop-evicted-spare")

    def expire(self, max_idle_s: float, now: float | None = None) -> int:
        """Stop the spares of keys nobody asked for in ``max_idle_s`` (and forget the keys); returns how many."""
        now = time.monotonic() if now is None else now
        stopped = 0
        for key in [k for k, t in self._taken.items() if now - t > max_idle_s]:
            del self._taken[key]
            for proc in self._spares.pop(key, []):
                self._tasks.spawn(proc.stop(graceful=False), name="stop-idle-spare")
                stopped += 1
        return stopped

    def ready(self, launch: NodeLaunch) -> int:
        return sum(1 for p in self._spares.get(launch, ()) if p.proc is not None and p.proc.alive)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.aclose()
        spares = [p for procs in self._spares.values() for p in procs]
        self._spares.clear()
        await asyncio.gather(*(p.stop(graceful=False) for p in spares), return_exceptions=True)
        if self._own_installs:
            await self.installs.close()
