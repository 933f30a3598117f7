"""Pre-started Node.js processes ("spares"), so that a new Node execution environment costs its function's module
load rather than Node's boot (~40-100 ms here; see ``python -m bench node``).

A spare is a :class:`NodeProcess` that has said HELLO and waits for its INIT frame. Spares are keyed by
:class:`NodeLaunch` (what is fixed when ``node`` starts: major, heap flags from MemorySize, ``NODE_OPTIONS``, exec
wrapper). :meth:`SparePool.take` hands out a ready spare of that key, or starts a process on the spot when there is
none (the caller then waits for the boot; the Init Duration it reports includes it), and in both cases starts a
replacement in the background, so the next environment of that key finds one. Only keys that were asked for get
spares; at most ``max_keys`` keys are kept (the least recently used key's spares are stopped), ``per_key`` spares
each. A spare that died while waiting (killed from outside, OOM-killed by the host) is discarded at ``take``.

Background starts are tasks of this pool's :class:`edge.tasks.TaskOwner` (one per key at a time); :meth:`close`
cancels them and stops every spare. The Node binary of a major comes from :mod:`.node_dist` (installed on first
use, in a thread, when ``install`` is true).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from edge.invocation.execution import node_dist
from edge.invocation.execution.node_process import NodeLaunch, NodeProcess
from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.invocation.node_spares")


class SparePool:
    def __init__(self, *, per_key: int = 1, max_keys: int = 8, install: bool = True) -> None:
        self.per_key = per_key
        self.max_keys = max_keys
        self.install = install
        self._spares: OrderedDict[NodeLaunch, list[NodeProcess]] = OrderedDict()  # LRU order of keys
        self._tasks = TaskOwner("node-spares")
        self._closed = False
        self.started = 0  # processes started (spares and on-the-spot), for tests and introspection
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        keys = ", ".join(f"node{k.major}/{k.memory_mb}MB:{len(v)}" for k, v in self._spares.items())
        return f"<SparePool {keys or 'empty'} hits={self.hits} misses={self.misses}>"

    async def dist(self, major: int) -> node_dist.NodeDist:
        found = node_dist.find(major)
        if found is not None:
            return found
        if not self.install:
            raise node_dist.NodeInstallError(f"Node.js {major} is not installed; run `python -m "
                                             f"edge.invocation.execution.node_dist install {major}`.")
        return await asyncio.to_thread(node_dist.ensure, major)

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
            proc = await NodeProcess.spawn(launch, await self.dist(launch.major))
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
                proc = await NodeProcess.spawn(launch, await self.dist(launch.major))
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
            _, victims = self._spares.popitem(last=False)
            for proc in victims:
                self._tasks.spawn(proc.stop(graceful=False), name="stop-evicted-spare")

    def ready(self, launch: NodeLaunch) -> int:
        return sum(1 for p in self._spares.get(launch, ()) if p.proc is not None and p.proc.alive)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.aclose()
        spares = [p for procs in self._spares.values() for p in procs]
        self._spares.clear()
        await asyncio.gather(*(p.stop(graceful=False) for p in spares), return_exceptions=True)
