"""edgelab's invocation core: registry (SQLite + code store), service facade, execution.

Public names are imported lazily (PEP 562) so that ``edge.invocation.runtime`` (imported by worker
processes, where start-up time is cold-start time) does not drag in SQLite, the registry or asyncio code.

- :class:`LambdaService` (``.service``)  one per process: control-plane operations + invoke
- :class:`Registry` (``.registry``)      the SQLite registry with cached resolution
- :class:`Executor` (``.executor``)      the execution side (worker processes, pools, limits, logs, metrics)
- ``errors``                             control-plane exceptions (``LambdaError`` and subclasses)
- ``models``                             FunctionSpec, InvokeOptions, InvocationResult, limits
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Executor",
    "ExecutorSettings",
    "FunctionSpec",
    "InvocationResult",
    "InvokeOptions",
    "LambdaError",
    "LambdaService",
    "Outcome",
    "Registry",
    "ThrottleReason",
]

_LAZY = {
    "Executor": "edge.invocation.execution.executor",
    "ExecutorSettings": "edge.invocation.execution.executor",
    "LambdaService": "edge.invocation.service.facade",
    "Registry": "edge.invocation.registry.core",
    "LambdaError": "edge.invocation.errors",
    "FunctionSpec": "edge.invocation.models",
    "InvocationResult": "edge.invocation.models",
    "InvokeOptions": "edge.invocation.models",
    "Outcome": "edge.invocation.models",
    "ThrottleReason": "edge.invocation.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
