"""LambdaService: invoke validation and routing, executor synchronisation, cross-process visibility.

The executor seam is exercised with a recording fake here (pure service logic); the real Executor is used by
the REST API tests (tests/control/lambda_api/test_invoke.py).
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge.invocation.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    InvalidRuntimeException,
    RequestTooLargeException,
    ResourceNotFoundException,
    ServiceException,
    ValidationException,
)
from edge.invocation.models import ACTIVE, FunctionSpec, InvocationResult, InvokeOptions, Outcome, RuntimeState
from edge.invocation.service.facade import LambdaService


class RecordingExecutor:
    """Fake executor: echoes payloads and records every call the service makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.invocations: list[tuple[FunctionSpec, bytes, InvokeOptions, int | None]] = []
        self.configured: list[tuple[int, dict[str, int]]] = []
        self.provisioned: dict[tuple[str, str, str], int] = {}
        self.retired: list[tuple[str, frozenset[tuple[str, str, str]]]] = []
        self.routes: list[Any] = []  # the route passed with each invocation (None: the executor builds it)

    async def start(self) -> None:
        self.calls.append(("start", None))

    async def close(self) -> None:
        self.calls.append(("close", None))

    async def invoke(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions, *, reserved_concurrency: int | None = None,
                     route: Any = None) -> InvocationResult:
        self.invocations.append((spec, payload, options, reserved_concurrency))
        self.routes.append(route)
        return InvocationResult(Outcome.OK, payload, options.request_id, spec.version)

    def route(self, spec: FunctionSpec, region: str, display_name: str | None, log_group: str | None) -> Any:
        return (region, spec.pool_key, display_name, log_group)

    def configure_concurrency(self, *, account_limit: int, reserved: Mapping[str, int]) -> None:
        self.configured.append((account_limit, dict(reserved)))

    async def set_provisioned(self, spec: FunctionSpec, count: int, *, region: str | None = None) -> None:
        self.calls.append(("set_provisioned", (spec.pool_key, count, region)))
        self.provisioned[spec.pool_key] = count

    def provisioned_status(self, spec: FunctionSpec, *, region: str | None = None) -> tuple[int, str, str | None]:
        return self.provisioned.get(spec.pool_key, 0), "READY", None

    async def retire(self, function_name: str, keep: Collection[tuple[str, str, str]] = ()) -> None:
        self.retired.append((function_name, frozenset(keep)))

    def runtime_state(self, runtime: str) -> RuntimeState:
        return ACTIVE

    async def check_runtime(self, runtime: str) -> RuntimeState:
        return ACTIVE


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("def handler(event, context):\n    return event\n")
    return src


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[LambdaService, RecordingExecutor]]:
    executor = RecordingExecutor()
    svc = LambdaService(tmp_path / "state", executor=executor, rng=random.Random(3), account_concurrency=500, poll_interval_s=0.02)
    await svc.start()
    yield svc, executor
    await svc.close()


async def _create(svc: LambdaService, code_dir: Path, name: str = "fn", **extra: Any) -> None:
    await svc.create_function({"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler", **extra}, code_dir=code_dir)


async def test_invoke_builds_options_and_passes_reserved_concurrency(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir, LoggingConfig={"LogGroup": "/custom/group"})
    await svc.put_function_concurrency("fn", 7)
    ctx = base64.b64encode(b'{"custom": {"k": "v"}}').decode()
    result = await svc.invoke("fn", None, b'{"a": 1}', log_type="Tail", client_context_b64=ctx, region="eu-central-1", request_id="rid-1")
    assert result.outcome is Outcome.OK and result.payload == b'{"a": 1}'
    spec, _payload, options, reserved = ex.invocations[-1]
    assert (spec.function_name, spec.version, reserved) == ("fn", "$LATEST", 7)
    assert options.request_id == "rid-1" and options.region == "eu-central-1" and options.want_log_tail
    assert options.client_context == '{"custom": {"k": "v"}}'
    assert options.invoked_arn == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert options.log_group == "/custom/group"


async def test_invoke_alias_routes_and_keeps_the_alias_arn(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    await svc.publish_version("fn")
    await svc.update_function_configuration("fn", {"Timeout": 10})
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1", weights={"2": 0.5})
    versions = [(await svc.invoke("fn", "live", b"{}")).executed_version for _ in range(200)]
    assert {"1", "2"} == set(versions) and 60 < versions.count("2") < 140
    spec, _, options, _ = ex.invocations[-1]
    assert options.invoked_arn.endswith(":function:fn:live") and spec.version == versions[-1]


async def test_empty_payload_becomes_an_empty_object(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    await svc.invoke("fn", None, b"")
    assert ex.invocations[-1][1] == b"{}"


@pytest.mark.parametrize(
    ("kwargs", "payload", "error", "match"),
    [
        ({}, b"{not json", InvalidRequestContentException, "Could not parse request body into json: Could not parse payload into json"),
        ({}, b'"\xff\xfe"', InvalidRequestContentException, "Could not parse payload into json"),
        ({}, b"[" * 10 + b" " * 6_291_456, RequestTooLargeException, "6291456 bytes for the InvokeFunction operation"),
        ({"invocation_type": "Event"}, b"[" + b" " * 1_048_576 + b"]", RequestTooLargeException, "1048576 bytes"),
        ({"invocation_type": "Event"}, b"{oops", InvalidRequestContentException, "Could not parse payload"),
        ({"invocation_type": "Bogus"}, b"{}", ValidationException, "invocationType"),
        ({"log_type": "Everything"}, b"{}", ValidationException, "logType"),
        ({"client_context_b64": "%%%"}, b"{}", InvalidRequestContentException, "Client context"),
        ({"client_context_b64": "A" * 4000}, b"{}", InvalidParameterValueException, "3583"),
    ],
)
async def test_invoke_request_errors(service: Any, code_dir: Path, kwargs: dict, payload: bytes, error: type, match: str) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    with pytest.raises(error, match=match):
        await svc.invoke("fn", None, payload, **kwargs)
    assert ex.invocations == []


async def test_invoke_unknown_function_version_alias(service: Any, code_dir: Path) -> None:
    svc, _ = service
    await _create(svc, code_dir)
    for name, qualifier, suffix in (("nope", None, "function:nope"), ("fn", "5", "function:fn:5"), ("fn", "prod", "function:fn:prod")):
        with pytest.raises(ResourceNotFoundException) as err:
            await svc.invoke(name, qualifier, b"{}")
        assert err.value.message == f"Function not found: arn:aws:lambda:us-east-1:000000000000:{suffix}"


async def test_dry_run_checks_existence_only(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    result = await svc.invoke("fn", None, b"{}", invocation_type="DryRun")
    assert result.outcome is Outcome.OK and result.payload == b"" and ex.invocations == []
    with pytest.raises(ResourceNotFoundException):
        await svc.invoke("other", None, b"{}", invocation_type="DryRun")


async def test_runtime_outside_this_build_is_stored_but_not_runnable(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await svc.create_function({"FunctionName": "jv", "Runtime": "java21", "Handler": "a.B::h"}, code_dir=code_dir)
    with pytest.raises(InvalidRuntimeException, match=r"java21 is stored but cannot be executed.*nodejs20\.x") as err:
        await svc.invoke("jv", None, b"{}")
    assert err.value.status == 502 and ex.invocations == []
    await svc.create_function({"FunctionName": "js", "Runtime": "nodejs20.x", "Handler": "index.handler"},
                              code_dir=code_dir)
    assert (await svc.invoke("js", None, b"{}")).outcome is Outcome.OK  # Node.js runs (the fake executor here)


async def test_service_without_executor_refuses_invokes_clearly(tmp_path: Path, code_dir: Path) -> None:
    async with LambdaService(tmp_path / "state") as svc:
        await _create(svc, code_dir)
        assert (await svc.invoke("fn", None, b"{}", invocation_type="DryRun")).executed_version == "$LATEST"
        with pytest.raises(ServiceException, match="no executor"):
            await svc.invoke("fn", None, b"{}")


async def test_executor_lifecycle_and_concurrency_sync(service: Any, code_dir: Path) -> None:
    svc, ex = service
    assert ex.calls[0] == ("start", None)
    await _create(svc, code_dir)
    await svc.put_function_concurrency("fn", 20)
    assert ex.configured[-1] == (500, {"fn": 20})
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1")
    view = await svc.put_provisioned_concurrency("fn", "live", 3)
    assert (view.status, view.allocated, view.requested) == ("IN_PROGRESS", 0, 3)
    spec1 = svc.registry.resolve("fn", "1", random.Random(0))[0]
    assert ex.provisioned == {spec1.pool_key: 3}
    assert ("set_provisioned", (spec1.pool_key, 3, "us-east-1")) in ex.calls
    got = await svc.get_provisioned_concurrency("fn", "live")
    assert (got.status, got.allocated) == ("READY", 3)
    await svc.delete_provisioned_concurrency("fn", "live")
    assert ex.provisioned == {spec1.pool_key: 0}
    await svc.delete_function_concurrency("fn")
    assert ex.configured[-1] == (500, {})


async def test_stale_latest_environments_are_retired(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    old = svc.registry.resolve("fn", None, random.Random(0))[0].pool_key
    await svc.update_function_configuration("fn", {"MemorySize": 256})
    new = svc.registry.resolve("fn", None, random.Random(0))[0].pool_key
    await _wait_for(lambda: any(name == "fn" and new in keep for name, keep in ex.retired))
    _name, keep = next((n, k) for n, k in ex.retired if new in k)
    assert old not in keep
    await svc.delete_function("fn")
    assert ex.retired[-1] == ("fn", frozenset())


async def test_two_services_share_the_registry(tmp_path: Path, code_dir: Path) -> None:
    """A change made by the control-process service is visible to a POP-process service within a second."""
    ex = RecordingExecutor()
    control = LambdaService(tmp_path / "state")
    pop = LambdaService(tmp_path / "state", region="eu-central-1", executor=ex, poll_interval_s=0.05)
    async with control, pop:
        await _create(control, code_dir)
        assert (await pop.invoke("fn", None, b"{}")).executed_version == "$LATEST"
        await control.publish_version("fn")
        await control.create_alias("fn", "live", "1")
        await control.put_function_concurrency("fn", 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while True:
            try:
                result = await pop.invoke("fn", "live", b"{}")
                if ex.invocations[-1][3] == 5:
                    break
            except ResourceNotFoundException:
                pass
            assert loop.time() < deadline, "alias/concurrency change not visible in the other service within 1 s"
            await asyncio.sleep(0.02)
        assert result.executed_version == "1" and ex.invocations[-1][2].region == "eu-central-1"
        # the executor's concurrency settings follow from the change feed's reconcile (the invoke above may have
        # seen the change first, through the registry cache's own lazy poll)
        await _wait_for(lambda: ex.configured[-1] == (1000, {"fn": 5}), timeout=1.0)


async def test_change_feed_waits_for_writes_instead_of_polling(tmp_path: Path, code_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed reads PRAGMA data_version when the registry's files were written (edge.inotify), not every
    poll_interval_s: idle, it polls once per FALLBACK_POLL_S; a commit by another process is applied at once."""
    from edge.inotify import FALLBACK_POLL_S

    ex = RecordingExecutor()
    control = LambdaService(tmp_path / "state")
    pop = LambdaService(tmp_path / "state", region="eu-central-1", executor=ex, poll_interval_s=0.05)
    async with control, pop:
        await _create(control, code_dir)
        await asyncio.sleep(0.2)  # the create's writes are seen and applied
        polls: list[int] = []
        real_poll = pop.registry.cache.poll

        def counting_poll() -> bool:
            polls.append(1)
            return real_poll()

        monkeypatch.setattr(pop.registry.cache, "poll", counting_poll)
        await asyncio.sleep(0.5)
        assert len(polls) <= 1, f"{len(polls)} polls in 0.5 s of quiet (fallback every {FALLBACK_POLL_S} s)"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await control.put_function_concurrency("fn", 7)
        await _wait_for(lambda: bool(ex.configured) and ex.configured[-1] == (1000, {"fn": 7}), timeout=0.5)
        assert loop.time() - started < 0.5


async def test_hot_path_does_not_touch_sqlite_when_nothing_changed(service: Any, code_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = service
    await _create(svc, code_dir)
    await svc.invoke("fn", None, b"{}")  # warms the cache

    def forbidden(*_: object) -> None:
        raise AssertionError("SQLite read on the hot path")

    monkeypatch.setattr(svc.registry.db, "read", forbidden)
    monkeypatch.setattr(svc.registry.cache, "poll", lambda: False)  # keep the poll task from faking a change
    for _ in range(50):
        await svc.invoke("fn", None, b"{}")


async def _wait_for(predicate: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
