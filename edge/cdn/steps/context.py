"""``PopContext``: everything the pipeline steps share for one POP (built once by ``edge.cdn.server.pop.PopState``),
including the ``TaskOwner`` of its background refreshes (stale-while-revalidate)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.policy import PolicyOptions
from edge.cdn.cache.store import CacheStore
from edge.cdn.config.distribution import Distribution
from edge.cdn.config.plan import BehaviorPlan, DistributionPlan
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.origin.client import OriginClient
from edge.cdn.origin.failures import FailureLog
from edge.cdn.responses import PopIdentity
from edge.cdn.stats import PopStats
from edge.cdn.steps import Exchange, Step, TriggerCall, TriggerRunner
from edge.tasks import TaskOwner

if TYPE_CHECKING:
    from edge.cdn.chaos.engine import PopChaos
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
    from edge.cdn.config.geo import ViewerLocation
    from edge.cdn.errors import LambdaError
    from edge.cdn.tiers.upstream import TierUpstream


@dataclass(slots=True)
class PopContext:
    """The shared, long-lived dependencies of one POP's pipeline; ``plans`` is the distribution as compiled when
    the POP loaded it (``edge.cdn.config.plan``)."""

    plans: DistributionPlan
    identity: PopIdentity
    store: CacheStore
    coalescer: Coalescer
    origin: OriginClient
    stats: PopStats
    options: PolicyOptions
    background: TaskOwner  # background refreshes: one per cache key at a time, closed with the POP
    triggers: TriggerRunner | None = None
    functions: CloudFrontFunctionRunner | None = None  # CloudFront Functions (FunctionAssociations)
    clock: Callable[[], float] = time.time  # epoch seconds (cache ages); injectable for tests
    location: ViewerLocation | None = None  # the POP's simulated viewer location (config/geo.py)
    location_header: bool = False  # [edge] viewer_location_header: the test override is honoured
    # the POP's HTTPS listener (Location of a redirect to HTTPS); None: the POP has none, so ViewerProtocolPolicy
    # cannot send viewers to HTTPS and every behavior is served over HTTP (edge.cdn.steps.viewer_request)
    https_port: int | None = None
    upstream: TierUpstream | None = None  # the regional edge cache / Origin Shield hops (edge.cdn.tiers)
    failures: FailureLog = field(default_factory=lambda: FailureLog(logging.getLogger("edgelab.pop")))
    chaos: PopChaos | None = None  # the applied chaos scenario (edge.cdn.chaos); None: none, the usual case

    @property
    def distribution(self) -> Distribution:
        return self.plans.distribution

    def match(self, path: str) -> BehaviorPlan:
        """The plan of the cache behavior selected for the URI path ``path``."""
        return self.plans.match(path)

    def run_hook(self, ex: Exchange, step: Step, request: EdgeRequest,
                 response: EdgeResponse | None = None) -> Awaitable[EdgeRequest | EdgeResponse]:
        """Run the function associated with ``step`` (the pipeline checked ``step in ex.plan.hooks``); errors
        propagate as LambdaError. Returns the runner's coroutine itself (awaited by the caller)."""
        assert self.triggers is not None
        return self.triggers.run(self._call(ex, step, request, response))

    def start_hook(self, ex: Exchange, step: Step, request: EdgeRequest,
                   done: Callable[[EdgeRequest | EdgeResponse | LambdaError], object]) -> bool:
        """:meth:`run_hook` of a request event without a coroutine, when the runner can (``TriggerRunner.start``):
        True when started (``done`` gets the result or the error), False with nothing done."""
        assert self.triggers is not None
        return self.triggers.start(self._call(ex, step, request, None), done)

    def _call(self, ex: Exchange, step: Step, request: EdgeRequest, response: EdgeResponse | None) -> TriggerCall:
        plan = ex.plan
        assert plan is not None
        # TriggerCall(event_type, distribution, behavior, association, request_id, request, response, timing),
        # positionally: keywords to a class go through a kwargs dict on Python 3.11 (~2.7k instructions per call)
        return TriggerCall(step, self.plans.distribution, plan.behavior, plan.hooks[step], ex.request_id, request,
                           response, ex.timing)
