"""Concurrency accounting for one region (AWS: per account and region). Pure bookkeeping: no I/O, no awaits.

Concurrency counts in-flight invocations. Order of decisions for ``acquire`` (LocalStack's CountingService, with
AWS's throttle reasons):

1. A provisioned slot of that exact (function, version, revision) is free -> provisioned lease.
2. The function has reserved concurrency R -> on-demand lease if its on-demand in-flight count is below
   ``R - provisioned(function)``, else throttle ``ReservedFunctionConcurrentInvocationLimitExceeded``.
   ``R = 0`` throttles everything.
3. Otherwise the unreserved pool: ``limit - sum(reserved) - sum(provisioned of unreserved functions)``; a lease
   if the unreserved in-flight count is below it, else throttle ``ConcurrentInvocationLimitExceeded``.

A :class:`Lease` is released exactly once (``release`` is idempotent), normally by ``with lease:``.

The two on-demand counts (a reserved function's, and the region's unreserved pool) are taken and given back
through ``_take_reserved`` / ``_take_unreserved`` / ``_give``: here they are this process's counters; a stack's
processes share them per region through :class:`~edge.invocation.execution.shared_limiter.SharedConcurrencyLimiter`
(AWS counts concurrency per account and region, whichever process runs the invocation). Provisioned
environments live in one process, so their leases stay counted here in both.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.invocation.models import ThrottleReason

PoolKey = tuple[str, str, str]


class Lease:
    __slots__ = ("_limiter", "_released", "function", "pool_key", "provisioned", "reserved", "slot")

    def __init__(self, limiter: ConcurrencyLimiter, function: str, pool_key: PoolKey, provisioned: bool,
                 reserved: bool, slot: int = -1) -> None:
        self._limiter = limiter
        self.function = function
        self.pool_key = pool_key
        self.provisioned = provisioned
        self.reserved = reserved
        self.slot = slot  # the shared slot it holds (-1: none, counted in this process only)
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        kind = "provisioned" if self.provisioned else ("reserved" if self.reserved else "unreserved")
        return f"<Lease {self.function} {kind}{' released' if self._released else ''}>"


class ConcurrencyLimiter:
    """In-flight counters and limits of one region."""

    def __init__(self, account_limit: int = 1000, reserved: Mapping[str, int] | None = None) -> None:
        self.account_limit = account_limit
        self.reserved: dict[str, int] = dict(reserved or {})
        self._provisioned: dict[PoolKey, int] = {}  # allocated (READY) provisioned envs per version
        self._prov_by_fn: dict[str, int] = {}
        self._prov_inflight: dict[PoolKey, int] = {}
        self._ondemand_inflight: dict[str, int] = {}  # per function, on-demand leases
        self._unreserved_inflight = 0
        self.inflight: dict[str, int] = {}  # per function, all leases (the ConcurrentExecutions metric)
        self._capacity = self._compute_capacity()

    def __repr__(self) -> str:
        return (f"<ConcurrencyLimiter limit={self.account_limit} reserved={self.reserved} "
                f"unreserved_inflight={self._unreserved_inflight}/{self.unreserved_capacity()} "
                f"provisioned={dict(self._prov_by_fn)}>")

    def configure(self, *, account_limit: int, reserved: Mapping[str, int]) -> None:
        self.account_limit = account_limit
        self.reserved = dict(reserved)
        self._capacity = self._compute_capacity()

    def set_provisioned(self, pool_key: PoolKey, allocated: int) -> None:
        """Record how many provisioned environments of ``pool_key`` are initialised (0 removes)."""
        old = self._provisioned.pop(pool_key, 0)
        if allocated > 0:
            self._provisioned[pool_key] = allocated
        fn = pool_key[0]
        total = self._prov_by_fn.get(fn, 0) - old + max(allocated, 0)
        if total > 0:
            self._prov_by_fn[fn] = total
        else:
            self._prov_by_fn.pop(fn, None)
        self._capacity = self._compute_capacity()

    def unreserved_capacity(self) -> int:
        return self._capacity

    def _compute_capacity(self) -> int:
        taken = sum(self.reserved.values())
        taken += sum(n for fn, n in self._prov_by_fn.items() if fn not in self.reserved)
        return max(0, self.account_limit - taken)

    def acquire(self, pool_key: PoolKey, reserved: int | None = None) -> Lease | ThrottleReason:
        """Take a lease or say why not. ``reserved`` (when not None) overrides and records the reservation."""
        fn = pool_key[0]
        if reserved is not None and self.reserved.get(fn) != reserved:
            self.reserved[fn] = reserved
            self._capacity = self._compute_capacity()
        prov = self._provisioned.get(pool_key, 0)
        if prov and self._prov_inflight.get(pool_key, 0) < prov:
            self._prov_inflight[pool_key] = self._prov_inflight.get(pool_key, 0) + 1
            lease = Lease(self, fn, pool_key, True, False)
        else:
            limit = self.reserved.get(fn)
            if limit is not None:
                slot = self._take_reserved(fn, limit - self._prov_by_fn.get(fn, 0))
                if slot is None:
                    return ThrottleReason.RESERVED
            else:
                slot = self._take_unreserved()
                if slot is None:
                    return ThrottleReason.ACCOUNT
                self._unreserved_inflight += 1
            self._ondemand_inflight[fn] = self._ondemand_inflight.get(fn, 0) + 1
            lease = Lease(self, fn, pool_key, False, limit is not None, slot)
        self.inflight[fn] = self.inflight.get(fn, 0) + 1  # every lease (the ConcurrentExecutions metric)
        return lease

    # -- the on-demand counts (this process's; shared ones override these three) ---------------------------
    def _take_reserved(self, fn: str, limit: int) -> int | None:
        """A slot (-1: counted here only) if ``fn``'s on-demand in-flight count is below ``limit``, else None."""
        return -1 if self._ondemand_inflight.get(fn, 0) < limit else None

    def _take_unreserved(self) -> int | None:
        """A slot (-1: counted here only) if the unreserved pool has room, else None."""
        return -1 if self._unreserved_inflight < self._capacity else None

    def _give(self, lease: Lease) -> None:
        """Give back a lease's on-demand slot (nothing to do when it is only counted here)."""

    def _release(self, lease: Lease) -> None:
        fn = lease.function
        self.inflight[fn] -= 1
        if lease.provisioned:
            self._prov_inflight[lease.pool_key] -= 1
            return
        self._ondemand_inflight[fn] -= 1
        if not lease.reserved:
            self._unreserved_inflight -= 1
        if lease.slot >= 0:
            self._give(lease)

    def total_inflight(self) -> int:
        return sum(self.inflight.values())

    def has_provisioned(self, pool_key: PoolKey) -> bool:
        return pool_key in self._provisioned

    def close(self) -> None:
        """Release what the limiter holds outside this object (nothing here)."""
