"""Values shared by the invocation core's parts, and the records of its public surface.

The registry (SQLite) resolves ``name[:qualifier]`` to a :class:`FunctionSpec`: an immutable description of
exactly what to run. The executor only ever sees specs; it never reads the registry. Pools are keyed by
:attr:`FunctionSpec.pool_key`, so any change to code or configuration of ``$LATEST`` yields a new key and
the next invocation is a cold start in a fresh environment (old environments are retired).

This module and :mod:`edge.invocation.errors` (plus the package's lazy exports, :mod:`edge.invocation`) are
what code outside ``edge/invocation`` imports (``tests/test_architecture.py`` enforces it). Besides the values
defined here it exposes the records the service's operations return, defined next to the code that builds
them and imported lazily on first access (PEP 562: importing this module does no I/O and imports nothing
outside the standard library, so worker start-up stays light):

- registry records: :class:`VersionRecord`, :class:`AliasRecord`, :class:`LayerVersionRecord`,
  :class:`AccountSummary`; the service's views :class:`FunctionDetails`, :class:`ProvisionedView`;
- async invocation: :class:`AsyncSettings`, :class:`EventInvokeConfig`, :class:`MappingRecord`,
  :class:`QueueInfo`.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.invocation.events.mappings import MappingRecord
    from edge.invocation.events.model import AsyncSettings, EventInvokeConfig
    from edge.invocation.events.queues import QueueInfo, QueueMessage
    from edge.invocation.registry.concurrency import AccountSummary
    from edge.invocation.registry.db import AliasRecord, LayerVersionRecord, VersionRecord
    from edge.invocation.registry.resources import FunctionUrlRecord
    from edge.invocation.service.control_ops import FunctionDetails, ProvisionedView

__all__ = [
    "ACCOUNT_ID", "ACTIVE", "ASYNC_PAYLOAD_LIMIT", "DEFAULT_REGION", "ENV_VARS_LIMIT", "INIT_TIMEOUT_S", "MAX_LAYERS",
    "RESPONSE_PAYLOAD_LIMIT", "SYNC_PAYLOAD_LIMIT", "UNSET", "UNZIPPED_CODE_LIMIT", "ZIPPED_CODE_LIMIT",
    "AccountSummary", "AliasRecord", "AsyncSettings", "EventInvokeConfig", "FunctionDetails", "FunctionSpec", "FunctionUrlRecord",
    "InvocationResult", "InvokeOptions", "LayerVersionRecord", "MappingRecord", "Outcome", "ProvisionedView",
    "QueueInfo", "QueueMessage", "RuntimeState", "Shaping", "ThrottleReason", "VersionRecord", "function_arn", "layer_arn",
]

# records defined next to the code that builds them (see the module docstring): name -> defining module
_LAZY = {
    "AccountSummary": "edge.invocation.registry.concurrency",
    "AliasRecord": "edge.invocation.registry.db",
    "AsyncSettings": "edge.invocation.events.model",
    "EventInvokeConfig": "edge.invocation.events.model",
    "FunctionDetails": "edge.invocation.service.control_ops",
    "FunctionUrlRecord": "edge.invocation.registry.resources",
    "LayerVersionRecord": "edge.invocation.registry.db",
    "MappingRecord": "edge.invocation.events.mappings",
    "ProvisionedView": "edge.invocation.service.control_ops",
    "QueueInfo": "edge.invocation.events.queues",
    "QueueMessage": "edge.invocation.events.queues",
    "VersionRecord": "edge.invocation.registry.db",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"

# Limits (see ../shared/docs/lambda-core-reference.md section 4.7)
SYNC_PAYLOAD_LIMIT = 6_291_456  # request payload, sync
RESPONSE_PAYLOAD_LIMIT = 6_291_556  # runtime-side response cap, as AWS states it
ASYNC_PAYLOAD_LIMIT = 1_048_576
ZIPPED_CODE_LIMIT = 52_428_800
UNZIPPED_CODE_LIMIT = 262_144_000
ENV_VARS_LIMIT = 4096
MAX_LAYERS = 5
INIT_TIMEOUT_S = 10.0


UNSET: Any = object()  # "member not present in the request" (e.g. UpdateAlias without RoutingConfig)


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """A function's ``State`` as far as its runtime decides it (https://docs.aws.amazon.com/lambda/latest/dg/
    functions-states.html): ``Active``; ``Pending`` while this machine gets the runtime ready (a Node.js major
    being installed; StateReasonCode ``Creating``); ``Failed`` when it could not (``InternalError``, the reason
    naming the next step). Invoking a function that is not Active is a ResourceConflictException, as on AWS."""

    state: str  # Active | Pending | Failed
    reason: str | None = None  # StateReason
    code: str | None = None  # StateReasonCode


ACTIVE = RuntimeState("Active")


def function_arn(name: str, region: str = DEFAULT_REGION, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def layer_arn(name: str, region: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One executable version of one function: everything an execution environment needs.

    Built by the registry; immutable. ``revision`` identifies the code+configuration snapshot (for a published
    version it never changes; for ``$LATEST`` it changes on every code/config update).
    """

    function_name: str
    version: str  # "$LATEST" or "1", "2", ...
    revision: str  # snapshot id of code+config (pool key component)
    runtime: str  # e.g. "python3.11"
    handler: str  # "module.function" (module may be a dotted path: "pkg/mod.fn" -> "pkg.mod.fn")
    code_dir: Path  # extracted, read-only package root (LAMBDA_TASK_ROOT)
    layer_dirs: tuple[Path, ...] = ()  # extracted layers, in attach order (later overrides earlier)
    memory_mb: int = 128
    timeout_s: float = 3.0
    ephemeral_storage_mb: int = 512
    environment: tuple[tuple[str, str], ...] = ()  # user environment variables
    region: str = DEFAULT_REGION  # the region the function lives in (ARNs)
    # (function name, version, revision): what identifies a pool of environments; computed once (hot path)
    pool_key: tuple[str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool_key", (self.function_name, self.version, self.revision))

    @property
    def arn(self) -> str:
        return function_arn(self.function_name, self.region)

    @property
    def qualified_arn(self) -> str:
        return function_arn(self.function_name, self.region, self.version)


# InvokeOptions and InvocationResult are values (never changed after construction) but not ``frozen``: one of
# each is built per invocation, and a frozen dataclass's __init__ sets every field through object.__setattr__
# (several times the cost of a plain slots class), which showed on the Lambda@Edge hot path.
@dataclass(slots=True)
class InvokeOptions:
    """Per-invocation inputs besides the spec and payload.

    ``region`` selects the regional pool and concurrency limit (each POP runs in its own region).
    ``display_name`` and ``log_group`` let callers such as Lambda@Edge present the function as
    ``us-east-1.NAME`` with log group ``/aws/lambda/us-east-1.NAME`` in the executing region.
    """

    request_id: str
    invoked_arn: str  # the ARN as invoked (may carry an alias qualifier)
    region: str = DEFAULT_REGION
    display_name: str | None = None  # context.function_name override
    log_group: str | None = None  # override of /aws/lambda/<name>
    client_context: str | None = None  # raw JSON text (already base64-decoded)
    want_log_tail: bool = False  # return the last 4 KB of this invocation's log lines
    trace_id: str | None = None  # the X-Ray trace header the function sees as _X_AMZN_TRACE_ID


class Outcome(enum.Enum):
    OK = "ok"
    FUNCTION_ERROR = "function_error"  # handler exception, init error, timeout, crash, OOM, oversized response
    THROTTLED = "throttled"


class ThrottleReason(enum.StrEnum):
    ACCOUNT = "ConcurrentInvocationLimitExceeded"
    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"


@dataclass(frozen=True, slots=True)
class Shaping:
    """What edgelab does to one invocation on purpose (``edge.invocation.execution.coldstart``): a fault source's
    verdict before it runs (a chaos scenario: throttle it, or run it on a new environment with an extra Init
    delay), and, on the result, what was added to its Init (that delay and the realistic cold-start model's)."""

    fault: str = ""  # the fault's kind as the scenario names it ("cold-start", "throttle"); "" for none
    throttle: bool = False  # answer THROTTLED without running
    cold: bool = False  # run on a new environment (a forced cold start)
    extra_init_ms: float = 0.0  # the fault's extra Init delay
    model_ms: float = 0.0  # the realistic cold-start model's Init delay (on results)


@dataclass(slots=True)
class InvocationResult:
    """What one invocation produced. Never raised: function failures and throttles are values.

    ``payload`` is the raw response bytes on OK, or AWS's error JSON (``errorType``, ``errorMessage``...) on
    FUNCTION_ERROR; empty on THROTTLED. ``error_type`` mirrors the payload's errorType for quick dispatch
    (``Sandbox.Timedout``, ``Runtime.ExitError``...).
    """

    outcome: Outcome
    payload: bytes
    request_id: str
    executed_version: str
    cold_start: bool = False
    init_duration_ms: float | None = None  # only on cold starts
    duration_ms: float = 0.0
    error_type: str | None = None
    throttle_reason: ThrottleReason | None = None
    log_tail: str | None = None  # when InvokeOptions.want_log_tail
    max_memory_used_mb: int = 0
    shaping: Shaping | None = None  # what edgelab did to this invocation on purpose (chaos, cold-start model)
