"""What asynchronous delivery and event source mappings need from the invocation path: a narrow Protocol.

:class:`~edge.invocation.events.delivery.AsyncDelivery` and :class:`~edge.invocation.events.mapping_runner.EsmRunner`
run queued events through an :class:`EventTarget`; the service's invoke path
(:class:`edge.invocation.service.invoke_path.InvokePath`) satisfies it. They never import the service: the
service builds them and hands them what they use (this target, the store, the registry cache, the tables).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edge.invocation.models import InvocationResult
    from edge.invocation.registry.cache import FunctionSnapshot

__all__ = ["EventTarget", "PreparedTarget"]


class PreparedTarget(Protocol):
    """One function qualifier resolved once per registry change (the invoke path's ``PreparedInvoke``)."""

    def invoke(self, payload: bytes, request_id: str | None = None) -> Awaitable[InvocationResult]:
        """Run ``payload`` (a JSON document, not parsed again) as ``request_id``; errors as ``invoke_event_now``."""
        ...


class EventTarget(Protocol):
    """Resolution and execution of one queued event (an async invocation or an event source mapping batch)."""

    async def snapshot_of(self, function_name: str) -> FunctionSnapshot:
        """The function's cached snapshot; ``ResourceNotFoundException`` when it does not exist."""
        ...

    async def invoke_event_now(self, function_name: str, qualifier: str | None, payload: bytes, request_id: str,
                               snap: FunctionSnapshot) -> InvocationResult:
        """Run one event synchronously (weighted alias routing drawn per attempt, as AWS); an empty payload
        becomes ``{}``. Throttles and function errors are results; bad requests raise ``LambdaError``."""
        ...

    def prepare(self, function_name: str, qualifier: str | None) -> PreparedTarget:
        """A reusable target with the same semantics as ``invoke_event_now`` for a payload already checked
        (resolution, executor route and options computed once per registry change, a weighted alias still
        drawn per call)."""
        ...
