"""LambdaService.prepare / PreparedInvoke: same routing, options and errors as invoke(), resolution cached until
the registry changes, weighted aliases drawn per call; request ids in UUID4 form."""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from edge.invocation.errors import InvalidRuntimeException, RequestTooLargeException, ResourceNotFoundException
from edge.invocation.models import SYNC_PAYLOAD_LIMIT, Outcome
from edge.invocation.service.facade import request_id_source
from tests.invocation.service.test_service import _create

UUID4 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


def test_request_ids_are_uuid4_and_distinct() -> None:
    new_id = request_id_source(random.Random(1))
    ids = [new_id() for _ in range(10_000)]  # three batches of 4,096 (a new random prefix for each)
    assert all(UUID4.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids[:50])
    assert request_id_source(random.Random(1))() == ids[0]  # injected generator: reproducible
    assert len({i[:24] for i in ids}) == 3


async def test_prepared_invoke_uses_the_same_options_as_invoke(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir, LoggingConfig={"LogGroup": "/custom/group"})
    await svc.put_function_concurrency("fn", 7)
    await svc.invoke("fn", None, b'{"a": 1}', region="eu-central-1", display_name="us-east-1.fn", request_id="r0")
    target = svc.prepare("fn", None, region="eu-central-1", display_name="us-east-1.fn")
    result = await target.invoke(b'{"a": 1}', "r1")
    assert result.outcome is Outcome.OK and result.payload == b'{"a": 1}'
    (spec0, _, opts0, res0), (spec1, payload, opts1, res1) = ex.invocations[-2:]
    assert (spec1, res1, payload) == (spec0, res0, b'{"a": 1}') and res1 == 7
    assert opts1 == opts0.__class__(**{**{f: getattr(opts0, f) for f in opts0.__slots__}, "request_id": "r1"})
    assert opts1.log_group == "/custom/group" and opts1.region == "eu-central-1"
    assert ex.routes[-2] is None  # invoke(): the executor builds the route
    # a warm prepared call passes the route built for the very options it sends (the first call resolves)
    await target.invoke(b'{"a": 1}', "r2")
    spec2, _, opts2, _ = ex.invocations[-1]
    assert ex.routes[-1] == (opts2.region, spec2.pool_key, opts2.display_name, opts2.log_group)
    await target.invoke(b"{}")
    assert UUID4.match(ex.invocations[-1][2].request_id)
    override = svc.prepare("fn", None, log_group="/aws/lambda/us-east-1.fn")
    await override.invoke(b"{}")
    assert ex.invocations[-1][2].log_group == "/aws/lambda/us-east-1.fn"
    assert ex.invocations[-1][2].region == svc.region


async def test_prepared_target_follows_registry_changes(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1")
    target = svc.prepare("fn", "live")
    assert (await target.invoke(b"{}")).executed_version == "1"
    await svc.update_function_configuration("fn", {"Timeout": 9})
    await svc.publish_version("fn")
    await svc.update_alias("fn", "live", function_version="2")
    assert (await target.invoke(b"{}")).executed_version == "2"
    assert ex.invocations[-1][0].timeout_s == 9
    await svc.put_function_concurrency("fn", 3)
    await target.invoke(b"{}")
    assert ex.invocations[-1][3] == 3
    await svc.delete_function("fn")
    with pytest.raises(ResourceNotFoundException):
        await target.invoke(b"{}")
    await _create(svc, code_dir)  # re-created: the same target works again once it resolves
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1")
    assert (await target.invoke(b"{}")).executed_version == "1"


async def test_weighted_alias_is_drawn_per_call(service: Any, code_dir: Path) -> None:
    svc, ex = service
    await _create(svc, code_dir)
    await svc.publish_version("fn")
    await svc.update_function_configuration("fn", {"Timeout": 10})
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1", weights={"2": 0.5})
    target = svc.prepare("fn", "live")
    versions = [(await target.invoke(b"{}")).executed_version for _ in range(200)]
    assert {"1", "2"} == set(versions) and 60 < versions.count("2") < 140
    assert ex.invocations[-1][2].invoked_arn.endswith(":function:fn:live")


async def test_prepared_errors_match_invoke(service: Any, code_dir: Path) -> None:
    svc, _ = service
    missing = svc.prepare("nope", "1")
    with pytest.raises(ResourceNotFoundException):
        await missing.invoke(b"{}")
    await _create(svc, code_dir)
    with pytest.raises(ResourceNotFoundException):
        await svc.prepare("fn", "alias-that-is-not-there").invoke(b"{}")
    with pytest.raises(RequestTooLargeException, match="6291456 bytes"):
        await svc.prepare("fn", None).invoke(b"[" + b" " * SYNC_PAYLOAD_LIMIT + b"]")
    await svc.create_function({"FunctionName": "rb", "Runtime": "ruby3.3", "Handler": "index.handler"},
                              code_dir=code_dir)
    js = svc.prepare("rb", None)
    for _ in range(2):  # the refusal is not cached as a success
        with pytest.raises(InvalidRuntimeException):
            await js.invoke(b"{}")


async def test_prepared_hot_path_does_not_touch_sqlite(service: Any, code_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = service
    await _create(svc, code_dir)
    target = svc.prepare("fn", None)
    await target.invoke(b"{}")

    def forbidden(*_: object) -> None:
        raise AssertionError("SQLite read on the hot path")

    monkeypatch.setattr(svc.registry.db, "read", forbidden)
    monkeypatch.setattr(svc.registry.cache, "poll", lambda: False)
    for _ in range(50):
        await target.invoke(b"{}")
