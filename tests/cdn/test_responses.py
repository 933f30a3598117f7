"""responses: CloudFront's viewer-facing decoration, as a header list (``decorate``) and as serialised lines
(``PopIdentity.decoration_lines``, the POP's wire path: measured 3 % of a cache hit's instructions) - the two
forms must say the same thing, in the same order."""

from __future__ import annotations

import pytest

from edge.cdn.responses import HIT, MISS, PopIdentity, decorate


@pytest.mark.parametrize("age", [None, 0, 17])
@pytest.mark.parametrize("x_cache", [HIT, MISS, "LambdaExecutionError from cloudfront"])
def test_decoration_lines_serialise_what_decorate_appends(age: int | None, x_cache: str) -> None:
    identity = PopIdentity("TST12-C1")
    kw = {"request_id": "abc==", "x_cache": x_cache, "server_timing": "cdn-cache;desc=HIT, edge;dur=0.1", "age": age}
    appended = decorate([("Content-Type", "text/plain")], identity, **kw)[1:]  # type: ignore[arg-type]
    assert identity.decoration_lines(**kw) == "".join(f"{k}: {v}\r\n" for k, v in appended)  # type: ignore[arg-type]


def test_decorate_replaces_pop_owned_names() -> None:
    identity = PopIdentity("TST12-C1")
    out = decorate([("X-Cache", "forged"), ("Via", "origin"), ("Age", "9"), ("Content-Length", "3"), ("A", "1")],
                   identity, request_id="r", x_cache=HIT, server_timing="t", age=1)
    assert out == [("A", "1"), ("Age", "1"), ("X-Cache", HIT), ("Via", identity.via), ("X-Amz-Cf-Pop", "TST12-C1"),
                   ("X-Amz-Cf-Id", "r"), ("Server-Timing", "t")]


def test_request_ids_are_unique_and_a_forked_child_does_not_repeat_its_parents() -> None:
    import os

    from edge.cdn.responses import new_request_id

    ids = {new_request_id() for _ in range(1000)}  # several batches
    assert len(ids) == 1000 and all(len(i) == 56 and i.endswith("==") for i in ids)
    new_request_id()  # the parent holds a partly used batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's next id comes from a batch of its own
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child not in ids and child != new_request_id()


def test_a_request_id_is_the_url_safe_base64_of_40_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each id of a batch is the URL-safe base64 of its own 40 bytes of the batch's randomness, in order (the batch
    is encoded in one call and cut: what ``_RequestIds.next`` must still amount to), then a new batch is read."""
    import base64
    import os

    from edge.cdn import responses

    n = responses._RequestIds.BATCH
    data = bytes(range(256)) * 42 * (n // 256 + 1)
    reads: list[int] = []
    monkeypatch.setattr(os, "urandom", lambda k: reads.append(k) or data[:k])
    ids = responses._RequestIds()
    batch = [ids.next() for _ in range(n)]
    assert batch == [base64.urlsafe_b64encode(data[k:k + 40]).decode() for k in range(0, 42 * n, 42)]
    assert reads == [42 * n]
    ids.next()
    assert reads == [42 * n, 42 * n]
