"""Test support for asynchronous invocation: a scripted fake executor and helpers (no real workers)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from edge.invocation.events.model import AsyncSettings
from edge.invocation.models import (
    ACTIVE,
    FunctionSpec,
    InvocationResult,
    InvokeOptions,
    Outcome,
    RuntimeState,
    ThrottleReason,
)
from edge.invocation.service.facade import LambdaService

FAST = AsyncSettings(retry_backoff_scale=0.001, throttle_backoff_base_s=0.01, throttle_backoff_max_s=0.05,
                     poll_interval_s=0.01, esm_poll_interval_s=0.01)


class ScriptedExecutor:
    """Behaviour by payload: ``{"fail": n}`` fails the first n attempts of that event (keyed by ``"id"``),
    ``{"fail": -1}`` always; ``{"throttle": n}`` throttles the first n; ``{"batch_fail": [...]}`` is answered
    by SQS batches with those ids reported as failures. ``hook(spec, payload)`` may override (returns a result
    or None)."""

    def __init__(self) -> None:
        self.invocations: list[tuple[str, str, dict[str, Any]]] = []  # (function, version, payload)
        self.attempts: Counter[str] = Counter()
        self.hook: Callable[[FunctionSpec, dict[str, Any], InvokeOptions], InvocationResult | None] | None = None

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def configure_concurrency(self, *, account_limit: int, reserved: Mapping[str, int]) -> None: ...
    async def set_provisioned(self, spec: FunctionSpec, count: int, *, region: str | None = None) -> None: ...
    def provisioned_status(self, spec: FunctionSpec, *, region: str | None = None) -> tuple[int, str, str | None]:
        return 0, "READY", None
    async def retire(self, function_name: str, keep: Collection[tuple[str, str, str]] = ()) -> None: ...
    def runtime_state(self, runtime: str) -> RuntimeState:
        return ACTIVE

    async def check_runtime(self, runtime: str) -> RuntimeState:
        return ACTIVE


    def route(self, spec: FunctionSpec, region: str, display_name: str | None, log_group: str | None) -> None:
        return None  # (the real executor's per-target Route; nothing to keep here)

    async def invoke(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions, *,
                     reserved_concurrency: int | None = None, route: object = None) -> InvocationResult:
        event = orjson.loads(payload)
        self.invocations.append((spec.function_name, spec.version, event))
        rid = options.request_id
        if self.hook is not None:
            found = self.hook(spec, event, options)
            if found is not None:
                return found
        key = f"{spec.function_name}:{event.get('id', rid)}" if isinstance(event, dict) else rid
        self.attempts[key] += 1
        n = self.attempts[key]
        if isinstance(event, dict) and event.get("throttle", 0) >= n:
            return InvocationResult(Outcome.THROTTLED, b"", rid, spec.version, throttle_reason=ThrottleReason.ACCOUNT)
        if isinstance(event, dict) and (event.get("fail") == -1 or event.get("fail", 0) >= n):
            err = orjson.dumps({"errorMessage": f"failure {n}", "errorType": "ValueError", "requestId": rid})
            return InvocationResult(Outcome.FUNCTION_ERROR, err, rid, spec.version, error_type="ValueError")
        return InvocationResult(Outcome.OK, orjson.dumps({"echo": event}), rid, spec.version)

    def calls_of(self, function: str) -> list[dict[str, Any]]:
        return [p for f, _, p in self.invocations if f == function]


def make_code_dir(root: Path) -> Path:
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "app.py").write_text("def handler(event, context):\n    return event\n")
    return src


async def create(svc: LambdaService, code_dir: Path, name: str = "fn", **extra: Any) -> None:
    await svc.create_function({"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler", **extra},
                              code_dir=code_dir)


def arn_fn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def arn_q(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:000000000000:{name}"


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Await until ``check()`` (sync or async) returns a truthy value; returns it."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


async def stat(svc: LambdaService, function: str, name: str) -> int:
    return (await svc.async_metrics())["functions"].get(function, {}).get(name, 0)


async def bodies(svc: LambdaService, queue: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.body) for m in await svc.read_queue(queue, 1000)]
