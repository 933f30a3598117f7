"""``edgelab generate-log``: deterministic per seed, every format readable back, Zipf-shaped popularity."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from edge.control.cli.main import main
from edge.control.replay.generator import GeneratorSpec, write_log
from edge.control.replay.readers import read_log


def _bytes(fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    write_log(GeneratorSpec(**kw), fmt, out)  # type: ignore[arg-type]  # the test passes keyword overrides
    return out.getvalue()


def test_same_seed_same_log_other_seed_other_log() -> None:
    assert _bytes("tsv", lines=500, seed=4) == _bytes("tsv", lines=500, seed=4)
    assert _bytes("tsv", lines=500, seed=4) != _bytes("tsv", lines=500, seed=5)


def test_formats_read_back_to_the_same_requests(tmp_path: Path) -> None:
    seen = {}
    for fmt in ("tsv", "json", "har"):
        path = tmp_path / f"log.{fmt}.gz"
        assert main(["generate-log", "--lines", "400", "--seed", "9", "--format", fmt, "--out", str(path)]) == 0
        records, stats = read_log(path)
        assert stats.bad == 0 and len(records) == 400 and stats.format == f"{fmt}.gz"
        seen[fmt] = [(r.ts, r.location, r.method, r.uri, r.query, r.status, r.result_type, r.cookie, r.user_agent)
                     for r in records]
    assert seen["tsv"] == seen["json"] == seen["har"]


def test_traffic_shape() -> None:
    spec = GeneratorSpec(lines=20_000, seed=2, catalogue=2_000, duration=86_400)
    path_counts: Counter[str] = Counter()
    hours: Counter[int] = Counter()
    records, _ = read_log_from(spec)
    for r in records:
        path_counts[r.uri] += 1
        hours[int(r.ts % 86_400) // 3600] += 1
    top = path_counts.most_common()
    assert top[0][1] > 50 * top[len(top) // 2][1]  # Zipf: the head dwarfs the median object
    assert hours[20] > 1.5 * hours[8]  # diurnal: evening peak, morning trough
    assert 0.1 < sum(1 for r in records if r.query) / len(records) < 0.2
    assert {r.status for r in records} == {200, 404} and {r.result_type for r in records} == {"Hit", "Miss", "Error"}
    assert records == sorted(records, key=lambda r: r.ts)


def read_log_from(spec: GeneratorSpec):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".log") as f:
        write_log(spec, "tsv", f)  # type: ignore[arg-type]  # a named temporary file is a binary IO
        f.flush()
        return read_log(f.name)


def test_bad_arguments_are_refused(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["generate-log", "--lines", "-1"]) == 2
    assert main(["generate-log", "--prefix", "static"]) == 2
    assert "--prefix must start with /" in capsys.readouterr().err
