"""Execution-environment pools keyed by :class:`PoolId` (region + spec.pool_key + presentation overrides).

Convention: all bookkeeping happens in synchronous methods (``checkout``, ``checkin``, ``_collect_*``) that never
await, so each one is atomic on the event loop (no lock needed, none taken on the hot path); process spawn and
kill happen outside them. Stopping an environment is done by tasks this pool owns (``_stoppers``, an
:class:`edge.tasks.TaskOwner`), waited for by :meth:`close`.

Callers (the executor) take an environment with ``async with pool.acquire(pid, spec) as env``: a BUSY warm
one, or a new one after Init; it is given back (idle again, or stopped) on exit. :class:`Acquisition` is built
from three steps, also public: ``env, new = pool.checkout(pid, spec)``, ``await pool.start_new(env)`` when new,
``pool.checkin(pid, env)``.

Lifecycle rules:
- Warm reuse: the most recently released idle environment is reused first (LIFO keeps few envs warm).
- Idle on-demand environments expire after ``idle_ttl_s``; any environment older than ``max_lifetime_s`` is
  retired when idle. Provisioned environments do not idle-expire; the provisioner keeps ``target`` of them.
- Warm environments are capped by count and by total MemorySize (``max_warm_environments``,
  ``max_warm_memory_mb``): when a new environment takes the total over either, idle on-demand environments are
  retired, least recently used first (busy and provisioned ones never are). Checked on the cold path only.
- A discarded environment (timeout, crash, OOM, cancelled) leaves its temp dir to the next environment of the
  same pool (AWS keeps /tmp across a reset), unless it exceeded the quota (then the dir is wiped). Retired or
  expired environments take their temp dir with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from edge.invocation.execution import isolation
from edge.invocation.execution import logs as logfmt
from edge.invocation.execution.backends import environment_class
from edge.invocation.execution.environment import ENV_BUSY, ENV_READY, Environment, EnvState
from edge.invocation.execution.worker_setup import RuntimeHost
from edge.invocation.models import FunctionSpec
from edge.tasks import TaskOwner

RUNTIME_DIR = str(Path(__file__).resolve().parents[1] / "runtime")  # the Python worker's runtime package
ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"
CLOSE_TIMEOUT_S = 30.0  # an environment stop takes at most ~4 s (2 s grace, SIGKILL, 2 s to be reaped)
log = logging.getLogger("edgelab.invocation.pool")


class PoolId(NamedTuple):
    """A pool: one region, one spec.pool_key, and the name/log group the function is presented with."""

    region: str
    pool_key: tuple[str, str, str]
    function_name: str  # as presented to the function (display name override or the real name)
    log_group: str


@dataclass(slots=True)
class _Pool:
    spec: FunctionSpec
    idle: list[Environment] = field(default_factory=list)
    live: set[Environment] = field(default_factory=set)  # starting, idle and busy
    spare_tmp: list[Path] = field(default_factory=list)
    target: int = 0  # provisioned concurrency wanted
    failed: str | None = None  # provisioning failure reason


@dataclass(frozen=True, slots=True)
class PoolSettings:
    state_dir: Path
    idle_ttl_s: float
    max_lifetime_s: float | None
    init_timeout_s: float
    provisioned_init_timeout_s: float
    max_concurrent_starts: int
    sandboxes: Path | None = None  # where environments' /tmp go (default <state_dir>/sandboxes)
    max_warm_environments: int | None = None  # environments kept (idle + busy) before idle ones are retired
    max_warm_memory_mb: int | None = None  # the same, by the sum of their MemorySize


ProvisionedCallback = Callable[[str, tuple[str, str, str], int], None]  # region, pool_key, allocated


class EnvironmentPool:
    def __init__(self, settings: PoolSettings, host: RuntimeHost, logs: logfmt.LogStore,
                 on_provisioned: ProvisionedCallback, wake_provisioner: Callable[[], None] | None = None) -> None:
        self._s = settings
        self._host = host  # what environments start with (zygote, Node spares, credentials)
        self._logs = logs
        self._on_provisioned = on_provisioned
        self._wake = wake_provisioner
        self._pools: dict[PoolId, _Pool] = {}
        self._starts = asyncio.Semaphore(settings.max_concurrent_starts)
        self._stoppers = TaskOwner("edgelab-env-stop")
        self._detached: set[Environment] = set()  # busy environments of retired pools (stop on release)
        self._closed = False
        self._sandboxes = settings.sandboxes or settings.state_dir / "sandboxes"

    def __repr__(self) -> str:
        parts = []
        for pid, pool in self._pools.items():
            states: dict[str, int] = {}
            for env in pool.live:
                states[env.state.name] = states.get(env.state.name, 0) + 1
            parts.append(f"{pid.region}/{pid.pool_key[0]}:{pid.pool_key[1]} idle={len(pool.idle)} "
                         f"live={len(pool.live)} {states} target={pool.target}")
        return f"<EnvironmentPool {'; '.join(parts) or 'empty'}>"

    def environments(self) -> list[Environment]:
        return [env for pool in self._pools.values() for env in pool.live] + list(self._detached)

    # -- acquire / release ---------------------------------------------------------------------------------
    def acquire(self, pid: PoolId, spec: FunctionSpec, init_timeout_s: float | None = None) -> Acquisition:
        """``async with pool.acquire(pid, spec) as env``: a BUSY environment (warm if one is idle, else a new
        one after Init). If Init failed the environment has ``init_failure`` set and must not be invoked.
        Released (or discarded) on exit, also on errors and cancellation. ``init_timeout_s`` overrides the
        Init cap for a new environment."""
        return Acquisition(self, pid, spec, init_timeout_s)

    def checkout(self, pid: PoolId, spec: FunctionSpec, fresh: bool = False) -> tuple[Environment, bool]:
        """Take an environment: (a BUSY warm one, False) or (a new STARTING one, True) that the caller must
        pass to :meth:`start_new`. Either way the caller owns it until :meth:`checkin` (call it in a finally).
        ``fresh``: always a new one (a chaos scenario's forced cold start, ``coldstart.py``).

        A warm one is the most recently used idle one (a provisioned one first); one found dead while idle is
        stopped (its /tmp goes to the pool's next environment)."""
        pool = self._pools.get(pid)
        if pool is None:
            pool = self._pools[pid] = _Pool(spec)
        if fresh:
            return self._new_env(pid, pool, spec, ON_DEMAND), True
        if pool.idle:
            env = self._warm(pid, pool)
            if env is not None:
                return env, False
        env = self._new_env(pid, pool, spec, ON_DEMAND)
        for victim in self._collect_over_cap():
            self._stop_later(victim, True, False)
        return env, True

    def checkout_warm(self, pid: PoolId) -> Environment | None:
        """:meth:`checkout` of a warm environment only: a BUSY one, or None (no new one is made) when none is idle."""
        pool = self._pools.get(pid)
        return None if pool is None or not pool.idle else self._warm(pid, pool)

    def _warm(self, pid: PoolId, pool: _Pool) -> Environment | None:
        idle = pool.idle
        while idle:
            if pool.target:  # provisioned environments are preferred over on-demand ones
                pick = len(idle) - 1
                env = idle.pop(next((i for i in range(pick, -1, -1) if idle[i].init_type == PROVISIONED), pick))
            else:
                env = idle.pop()  # the most recently used
            if env.discard or env.state is not ENV_READY:
                pool.live.discard(env)  # its process died while idle: a reset, /tmp goes to the next env
                pool.spare_tmp.append(env.tmp_dir)
                if env.init_type == PROVISIONED:
                    self._report_provisioned(pid, pool)
                self._stop_later(env, False, True)
                continue
            env.mark_busy()
            return env
        return None

    async def start_new(self, env: Environment, init_timeout_s: float | None = None) -> None:
        """Run Init of a new environment from :meth:`checkout`; BUSY afterwards unless Init failed
        (``env.init_failure``). Exceptions (zygote failure, cancellation) propagate: still call checkin."""
        await self._start(env, init_timeout_s or self._s.init_timeout_s)
        if env.init_failure is None and env.state is EnvState.READY:
            env.mark_busy()

    def checkin(self, pid: PoolId, env: Environment) -> None:
        """Give back an environment from :meth:`checkout`: idle again, or detached from its pool and stopped if it
        must be discarded (its /tmp kept for the pool's next environment after a reset)."""
        pool = self._pools.get(pid)
        if pool is None or env not in pool.live:
            self._detached.discard(env)
            if env.state is not EnvState.STOPPED:
                self._stop_later(env, not env.discard, False)
            return
        too_old = (self._s.max_lifetime_s is not None
                   and time.monotonic() - env.created > self._s.max_lifetime_s)
        if env.discard or env.retired or too_old or env.state is not ENV_BUSY:
            pool.live.discard(env)
            keep_tmp = env.discard and not env.wipe_tmp and not env.retired
            if keep_tmp:
                pool.spare_tmp.append(env.tmp_dir)
            if env.init_type == PROVISIONED:
                self._report_provisioned(pid, pool)
            self._stop_later(env, not env.discard, keep_tmp)
            return
        env.mark_ready()
        pool.idle.append(env)

    def _new_env(self, pid: PoolId, pool: _Pool, spec: FunctionSpec, init_type: str) -> Environment:
        env_id = uuid.uuid4().hex
        tmp = pool.spare_tmp.pop() if pool.spare_tmp else self._sandboxes / env_id / "tmp"
        env = environment_class(spec.runtime)(
            env_id=env_id, spec=spec, region=pid.region, init_type=init_type, tmp_dir=tmp, log_group=pid.log_group,
            log_stream=logfmt.stream_name(spec.version, env_id), function_name=pid.function_name,
            zygote=self._host.zygote)
        pool.live.add(env)
        return env

    async def _start(self, env: Environment, init_timeout_s: float) -> None:
        env.tmp_dir.mkdir(parents=True, exist_ok=True)  # one mkdir, microseconds: not worth a thread hop
        async with self._starts:
            await env.launch(self._host, init_timeout_s)

    # -- stopping ------------------------------------------------------------------------------------------
    def _stop_later(self, env: Environment, graceful: bool, keep_tmp: bool) -> None:
        if self._closed:
            graceful = False  # close() is waiting: no 2 s grace
        self._stoppers.spawn(self._stop(env, graceful, keep_tmp), name=f"stop-env-{env.env_id[:8]}")

    async def _stop(self, env: Environment, graceful: bool, keep_tmp: bool) -> None:
        await env.stop(graceful=graceful)
        if not keep_tmp:
            await asyncio.to_thread(isolation.release_tmp, env.tmp_dir)

    # -- expiry, retirement -------------------------------------------------------------------------------
    async def expire(self, now: float | None = None) -> int:
        """Stop idle environments past their idle TTL or max lifetime; returns how many were stopped."""
        now = time.monotonic() if now is None else now
        victims = self._collect_expired(now)
        for env in victims:
            self._stop_later(env, True, False)
        return len(victims)

    def _collect_expired(self, now: float) -> list[Environment]:
        ttl, life = self._s.idle_ttl_s, self._s.max_lifetime_s
        out: list[Environment] = []
        for pid, pool in self._pools.items():
            keep: list[Environment] = []
            for env in pool.idle:
                dead = env.discard or env.state is not EnvState.READY
                expired = env.init_type == ON_DEMAND and now - env.last_used > ttl
                old = life is not None and now - env.created > life
                if dead or expired or old:
                    pool.live.discard(env)
                    out.append(env)
                    if env.init_type == PROVISIONED:
                        self._report_provisioned(pid, pool)
                else:
                    keep.append(env)
            pool.idle[:] = keep
        self._drop_empty_pools()
        return out

    def _collect_over_cap(self) -> list[Environment]:
        """Idle on-demand environments to retire, least recently used first, until the live ones fit both caps."""
        cap_n, cap_mb = self._s.max_warm_environments, self._s.max_warm_memory_mb
        if cap_n is None and cap_mb is None:
            return []
        live = [e for pool in self._pools.values() for e in pool.live] + list(self._detached)
        n, mb = len(live), sum(e.spec.memory_mb for e in live)

        def fits() -> bool:
            return (cap_n is None or n <= cap_n) and (cap_mb is None or mb <= cap_mb)

        if fits():
            return []
        idle = sorted(((e.last_used, pool, e) for pool in self._pools.values() for e in pool.idle
                       if e.init_type == ON_DEMAND), key=lambda t: t[0])
        victims: list[Environment] = []
        for _, pool, env in idle:
            if fits():
                break
            pool.idle.remove(env)
            pool.live.discard(env)
            victims.append(env)
            n -= 1
            mb -= env.spec.memory_mb
        return victims

    def _drop_empty_pools(self) -> None:
        for pid in [p for p, pool in self._pools.items() if not pool.live and not pool.target and not pool.spare_tmp]:
            del self._pools[pid]

    async def retire(self, match: Callable[[PoolId], bool], *, keep_targets: bool = False) -> int:
        """Stop idle environments of matching pools now and busy ones when released. Their provisioning is
        dropped too, unless ``keep_targets`` (then the provisioner starts fresh provisioned environments)."""
        victims = self._collect_retired(match, keep_targets)
        for env in victims:
            self._stop_later(env, True, False)
        return len(victims)

    def _collect_retired(self, match: Callable[[PoolId], bool], keep_targets: bool) -> list[Environment]:
        victims: list[Environment] = []
        for pid in [p for p in self._pools if match(p)]:
            pool = self._pools[pid]
            for env in pool.live:
                env.retired = True
            idle = [e for e in pool.live if e.state is EnvState.READY]
            for env in idle:
                pool.live.discard(env)
            pool.idle.clear()
            victims += idle
            for tmp in pool.spare_tmp:
                self._stoppers_rmtree(tmp)
            pool.spare_tmp.clear()
            if keep_targets and pool.target:
                self._report_provisioned(pid, pool)
            else:
                del self._pools[pid]
                self._detached.update(pool.live)
                if pool.target:
                    self._on_provisioned(pid.region, pid.pool_key, 0)
        return victims

    def _stoppers_rmtree(self, tmp: Path) -> None:
        self._stoppers.spawn(asyncio.to_thread(isolation.release_tmp, tmp), name="rm-sandbox")

    # -- provisioned concurrency ----------------------------------------------------------------------------
    def set_target(self, pid: PoolId, spec: FunctionSpec, count: int) -> None:
        pool = self._pools.get(pid)
        if pool is None:
            pool = self._pools[pid] = _Pool(spec)
        pool.spec = spec
        pool.target = max(0, count)
        pool.failed = None
        self._report_provisioned(pid, pool)

    def status(self, pid: PoolId) -> tuple[int, str, str | None]:
        pool = self._pools.get(pid)
        if pool is None:
            return 0, "READY", None
        allocated = self._allocated(pool)
        if pool.failed:
            return allocated, "FAILED", pool.failed
        return allocated, ("READY" if allocated >= pool.target else "IN_PROGRESS"), None

    @staticmethod
    def _allocated(pool: _Pool) -> int:
        return sum(1 for e in pool.live if e.init_type == PROVISIONED and not e.discard
                   and e.state in (EnvState.READY, EnvState.BUSY))

    def _report_provisioned(self, pid: PoolId, pool: _Pool) -> None:
        allocated = self._allocated(pool)
        self._on_provisioned(pid.region, pid.pool_key, min(allocated, pool.target))
        if allocated < pool.target and not pool.failed and self._wake is not None:
            self._wake()  # a provisioned environment went away (or the target grew): re-fill soon

    async def provision(self) -> None:
        """Bring every pool's provisioned environment count to its target (start missing, stop extras)."""
        starts, stops = self._plan_provisioning()
        for env in stops:
            self._stop_later(env, True, False)
        if not starts:
            return
        async with asyncio.TaskGroup() as tg:
            for pid, env in starts:
                tg.create_task(self._start_provisioned(pid, env))

    def _plan_provisioning(self) -> tuple[list[tuple[PoolId, Environment]], list[Environment]]:
        starts: list[tuple[PoolId, Environment]] = []
        stops: list[Environment] = []
        for pid, pool in self._pools.items():
            prov = [e for e in pool.live if e.init_type == PROVISIONED and not e.discard and not e.retired]
            missing = pool.target - len(prov)
            if missing > 0 and not pool.failed:
                starts += [(pid, self._new_env(pid, pool, pool.spec, PROVISIONED)) for _ in range(missing)]
            elif missing < 0:
                extra = [e for e in pool.idle if e.init_type == PROVISIONED][: -missing]
                for env in extra:
                    pool.idle.remove(env)
                    pool.live.discard(env)
                stops += extra
                self._report_provisioned(pid, pool)
        return starts, stops

    async def _start_provisioned(self, pid: PoolId, env: Environment) -> None:
        env.cold_pending = False  # Init happened ahead of traffic: the first invocation is not a cold start
        timeout = max(self._s.provisioned_init_timeout_s, env.spec.timeout_s)
        try:
            await self._start(env, timeout)
        except Exception:  # a zygote failure marks provisioning failed; never kills the task
            env.discard = True
        self._log_init(env)
        pool = self._pools.get(pid)
        if env.init_failure is not None or env.discard or pool is None or env not in pool.live:
            if pool is not None:
                pool.live.discard(env)
                if env.init_failure is not None or env.discard:
                    pool.failed = "FUNCTION_ERROR_INIT_FAILURE"
                self._report_provisioned(pid, pool)
            stop = True
        else:
            pool.idle.append(env)
            env.last_used = time.monotonic()
            self._report_provisioned(pid, pool)
            stop = False
        if stop:
            self._stop_later(env, False, False)

    def _log_init(self, env: Environment) -> None:
        lines = [logfmt.init_start_line(env.runtime_version, env.region), *logfmt.output_lines(env.init_output)]
        fail = env.init_failure
        if fail is not None:
            lines += logfmt.output_lines(fail.output)
            lines.append(logfmt.init_report_line(fail.duration_ms, "timeout" if fail.error_type ==
                                                 "Sandbox.Timedout" else "error", fail.error_type))
        self._logs.append(env.log_group, env.log_stream, lines)

    # -- shutdown ------------------------------------------------------------------------------------------
    async def close(self) -> None:
        """Kill every environment and wait for every stop task (at most ``CLOSE_TIMEOUT_S``: one that is still
        running then is cancelled, and the zygote's own shutdown kills and reaps what is left)."""
        envs = self.environments()
        self._pools.clear()
        self._detached.clear()
        self._closed = True
        for env in envs:
            env.retired = True
            if env.state is not EnvState.STOPPED:
                self._stop_later(env, False, False)
        if not await self._stoppers.join(CLOSE_TIMEOUT_S):
            log.error("environment pool: %d stop task(s) still running %.0f s after close", len(self._stoppers),
                      CLOSE_TIMEOUT_S)
        await self._stoppers.aclose()


class Acquisition:
    """The async context manager behind :meth:`EnvironmentPool.acquire` (checkout, start_new, checkin)."""

    __slots__ = ("_env", "_init_timeout", "_pid", "_pool", "_spec")

    def __init__(self, pool: EnvironmentPool, pid: PoolId, spec: FunctionSpec, init_timeout_s: float | None) -> None:
        self._pool = pool
        self._pid = pid
        self._spec = spec
        self._env: Environment | None = None
        self._init_timeout = init_timeout_s

    async def __aenter__(self) -> Environment:
        pool = self._pool
        env, new = pool.checkout(self._pid, self._spec)
        self._env = env
        if new:
            try:
                await pool.start_new(env, self._init_timeout)
            except BaseException:
                pool.checkin(self._pid, env)
                raise
        return env

    async def __aexit__(self, *exc: object) -> None:
        assert self._env is not None
        self._pool.checkin(self._pid, self._env)
