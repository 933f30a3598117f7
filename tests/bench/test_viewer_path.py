"""bench.viewer_path answers every read of each way as a hit (it checks the count and the last answer itself), and
the ways are what they say: the kept way asks the POP's ``again``, the others never do."""

from __future__ import annotations

import pytest

from bench.viewer_path import WAYS, measure
from edge.cdn.server.respond import PopViewer


async def test_each_way_answers_every_read_with_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = PopViewer.again

    def again(self: PopViewer, conn: object, kept: object) -> bytes | None:
        asked.append(1)
        return real(self, conn, kept)  # type: ignore[arg-type]

    monkeypatch.setattr(PopViewer, "again", again)
    results = await measure(50, 1)
    assert sorted(results) == sorted(WAYS) and all(len(v) == 1 and v[0] > 0 for v in results.values())
    assert len(asked) == 50 + 1  # the kept way's reads after the one whose answer it kept
