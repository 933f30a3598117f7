"""The corpus of 30 real CloudFront configurations (tests/corpus.py): every file loads unmodified except the ones
listed in ``STILL_REFUSED`` (each refused with the field, the reason and the next step) and is served by a real POP;
``edgelab serve`` starts a whole stack with the files this issue's loader work was for (the files with CloudFront
Functions start whole stacks in tests/control/stack/test_cff_stack.py). What a file needs to exist (its custom response headers
policies, its key groups) is created here, as a user would declare it in the settings."""

from __future__ import annotations

from pathlib import Path

from tests.control.stack.test_cff_stack import _serve, _stop
from tests.control.stack.test_serve import free_ports, requests, wait_until
from tests.corpus import corpus_dir, corpus_settings

# what issue 15 has not reached yet: file -> the refused field
STILL_REFUSED: dict[str, str] = {}


def _load_all(tmp: Path) -> tuple[dict[str, object], dict[str, str]]:
    from edge.cdn.config.distribution import ConfigError, load_distribution
    from edge.cdn.config.settings import load_settings

    (tmp / "settings.toml").write_text(corpus_settings(tmp))
    settings = load_settings(tmp / "settings.toml")
    loaded: dict[str, object] = {}
    refused: dict[str, str] = {}
    for path in sorted(corpus_dir().glob("*.json")):
        try:
            loaded[path.name] = load_distribution(path, settings)
        except ConfigError as exc:
            refused[path.name] = str(exc)
    return loaded, refused


def test_every_configuration_loads_unmodified(tmp_path: Path) -> None:
    loaded, refused = _load_all(tmp_path)
    assert len(loaded) + len(refused) == 30
    assert set(refused) == set(STILL_REFUSED), refused
    for name, msg in refused.items():
        assert STILL_REFUSED[name] in msg and "next step:" in msg, msg


async def test_every_loadable_configuration_serves_from_a_real_pop(tmp_path: Path) -> None:
    """Each file's distribution in a real POP (in this process, on a free port): it answers a request (the origins
    are real domains, unreachable here, so any CloudFront answer will do)."""
    import aiohttp

    from edge.cdn.config.settings import load_settings
    from edge.cdn.server.pop import start_pop

    loaded, _ = _load_all(tmp_path)
    settings = load_settings(tmp_path / "settings.toml")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for name, dist in loaded.items():
            pop = await start_pop(settings.pops[0], dist, settings, port=0)  # type: ignore[arg-type]
            try:
                async with session.get(f"http://127.0.0.1:{pop.port}/__nothing") as r:
                    assert 200 <= r.status < 600 and r.headers["Server"] == "CloudFront", name
            finally:
                await pop.stop()


def test_edgelab_serve_starts_with_corpus_files_and_prints_the_startup_lines(tmp_path: Path) -> None:
    """``edgelab serve`` itself, on the files that needed this issue's loader work (the update-distribution
    wrapper, trusted key groups declared in the settings, a custom response headers policy, a UTF-8 BOM): the stack
    starts, its POP answers, and every startup line of the file is printed. (Every file is loaded and served by a
    POP above; the files with CloudFront Functions start a whole stack in test_cff_stack.py.)"""
    loaded, _ = _load_all(tmp_path)
    for name in ("15-golfbeta-logging-config-updated.json", "21-oscarmike-update-cloudfront-full.json",
                 "25-video-streaming-cloudfront-update.json", "29-aisentinels-dist-config.json"):
        tmp = tmp_path / Path(name).stem
        tmp.mkdir()
        (tmp / "settings.toml").write_text(corpus_settings(tmp) + '[[pops]]\nname = "IAD"\nregion = "us-east-1"\n')
        iad, api = free_ports(2)
        proc = _serve(tmp, corpus_dir() / name, tmp / "settings.toml", {"IAD": iad}, api)
        try:
            wait_until(lambda port=iad: requests.get(f"http://127.0.0.1:{port}/__nothing", timeout=5).status_code > 0,
                       120)
        except AssertionError:
            raise AssertionError(f"{name}: {(tmp / 'serve.log').read_text()[-3000:]}") from None
        finally:
            _stop(proc)
        log = (tmp / "serve.log").read_text()
        notes = loaded[name].notices  # type: ignore[attr-defined]
        assert notes and all(n in log for n in notes), (name, [n for n in notes if n not in log])
