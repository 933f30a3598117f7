"""edgelab's invocation core: registry (SQLite + code store), service facade, execution.

The public surface: code outside ``edge/invocation`` (``edge.cdn``, ``edge.control``) imports only this package
and its modules :mod:`edge.invocation.errors` and :mod:`edge.invocation.models` (``tests/test_architecture.py``
enforces it). Names here are imported lazily (PEP 562) so that ``edge.invocation.runtime`` (imported by worker
processes, where start-up time is cold-start time) does not drag in SQLite, the registry or asyncio code.

- :class:`LambdaService`     one per process: control-plane operations, invoke, async invocation
- :class:`PreparedInvoke`    ``LambdaService.prepare(...)``: a hot caller's invocation target
- :class:`Registry`          the SQLite registry with cached resolution
- :class:`Executor`          the execution side (worker processes, pools, limits, logs, metrics) and its
  :class:`ExecutorSettings`
- :class:`LogStore`          the on-disk log store (readable from any process)
- :class:`StartShaper`       an executor's chaos and cold-start-model hooks (``Executor.shaper``), with
  :class:`ColdStartModel` (the realistic Init delay model)
- :func:`paginate`           Marker/MaxItems pagination of list results, as the Lambda API pages them
- :func:`zip_files`          a deployment package (zip bytes) from ``{path: content}``
- ``errors``                 control-plane exceptions (``LambdaError`` and subclasses)
- ``models``                 FunctionSpec, InvokeOptions, InvocationResult, limits, UNSET, the records the
  operations return
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.invocation.errors import LambdaError
    from edge.invocation.execution.coldstart import ColdStartModel, StartShaper
    from edge.invocation.execution.executor import Executor, ExecutorSettings
    from edge.invocation.execution.logs import LogStore
    from edge.invocation.models import FunctionSpec, InvocationResult, InvokeOptions, Outcome, ThrottleReason
    from edge.invocation.registry.core import Registry
    from edge.invocation.registry.packages import zip_files
    from edge.invocation.registry.rows import paginate
    from edge.invocation.service.facade import LambdaService
    from edge.invocation.service.invoke_path import PreparedInvoke

__all__ = [
    "ColdStartModel",
    "Executor",
    "ExecutorSettings",
    "FunctionSpec",
    "InvocationResult",
    "InvokeOptions",
    "LambdaError",
    "LambdaService",
    "LogStore",
    "Outcome",
    "PreparedInvoke",
    "Registry",
    "StartShaper",
    "ThrottleReason",
    "paginate",
    "zip_files",
]

_LAZY = {
    "ColdStartModel": "edge.invocation.execution.coldstart",
    "StartShaper": "edge.invocation.execution.coldstart",
    "Executor": "edge.invocation.execution.executor",
    "ExecutorSettings": "edge.invocation.execution.executor",
    "LambdaService": "edge.invocation.service.facade",
    "PreparedInvoke": "edge.invocation.service.invoke_path",
    "Registry": "edge.invocation.registry.core",
    "LogStore": "edge.invocation.execution.logs",
    "LambdaError": "edge.invocation.errors",
    "FunctionSpec": "edge.invocation.models",
    "InvocationResult": "edge.invocation.models",
    "InvokeOptions": "edge.invocation.models",
    "Outcome": "edge.invocation.models",
    "ThrottleReason": "edge.invocation.models",
    "paginate": "edge.invocation.registry.rows",
    "zip_files": "edge.invocation.registry.packages",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
