"""`edgelab loadtest` pieces that need no running stack: arguments, POP selection, generated settings, progress."""

import argparse
import importlib.util
import json
import tomllib

import pytest

from edge.control.loadtest import command as loadtest
from edge.control.loadtest.run import last_aggregated, progress_line
from edge.control.loadtest.stack import STACK_DIR, stack_settings, to_toml
from edge.control.stack.config import load_stack_config


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="edgelab")
    loadtest.add_loadtest_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["loadtest", *argv])


def test_parser_defaults_and_scenarios():
    args = _parse("cold-warm")
    assert (args.scenario, args.duration, args.idle_ttl, args.api, args.pop) == ("cold-warm", 120.0, 10.0, None, [])
    with pytest.raises(SystemExit):
        _parse("no-such-scenario")
    for scenario in loadtest.SCENARIOS.values():
        assert (loadtest.LOADTESTS / scenario.locustfile).is_file()


def test_missing_locust_is_a_clear_message(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "locust" else real(name, *a))
    assert loadtest.run_loadtest(_parse("hits", "--out", str(tmp_path))) == 2
    assert "needs locust" in capsys.readouterr().err and not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv,message", [
    (["cold-warm", "--api", "http://127.0.0.1:9"], "--idle-gap"),
    (["cold-warm", "--duration", "20", "--idle-gap", "15"], "use --duration >="),
    (["hits", "--users", "0"], "--users must be >= 1"),
    (["hits", "--processes", "0"], "--processes must be between 1 and 64"),
    (["hits", "--api", "http://127.0.0.1:9", "--realistic-cold-starts"], "with --api, start that stack"),
    (["hits", "--chaos", "/nonexistent/chaos.toml"], "--chaos /nonexistent/chaos.toml: No such file"),
])
def test_bad_arguments_fail_before_anything_starts(argv, message, capsys, tmp_path):
    assert loadtest.run_loadtest(_parse(*argv, "--out", str(tmp_path))) == 2
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_unreachable_api_is_reported(capsys, tmp_path):
    assert loadtest.run_loadtest(_parse("hits", "--api", "http://127.0.0.1:9", "--out", str(tmp_path))) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_select_pops():
    pops = [{"name": "IAD", "url": "http://a"}, {"name": "FRA", "url": "http://b"}]
    assert loadtest.select_pops(pops, [], multi=False) == [("IAD", "http://a")]
    assert loadtest.select_pops(pops, [], multi=True) == [("IAD", "http://a"), ("FRA", "http://b")]
    assert loadtest.select_pops(pops, ["fra"], multi=False) == [("FRA", "http://b")]
    assert loadtest.select_pops([{"name": "DUB", "url": "http://c"}], [], multi=False) == [("DUB", "http://c")]
    with pytest.raises(ValueError, match="unknown POP NRT; the stack has IAD, FRA"):
        loadtest.select_pops(pops, ["NRT"], multi=False)


def test_generated_settings_are_valid_stack_settings(tmp_path):
    data = stack_settings(state_dir=tmp_path / "state", api_port=29999, origin_port=28888,
                          pops=[("IAD", "us-east-1", 28001), ("NRT", "ap-northeast-1", 28002)], idle_ttl_s=7.5)
    text = to_toml(data)
    assert tomllib.loads(text) == data
    path = tmp_path / "settings.toml"
    path.write_text(text)
    cfg = load_stack_config(state_dir=None, settings=str(path), distribution=None)
    assert not cfg.demo and cfg.distribution_path == STACK_DIR / "distribution.json"
    assert cfg.state_dir == tmp_path / "state" and cfg.api_port == 29999
    assert [(p.name, p.region, p.port) for p in cfg.pops] == [("IAD", "us-east-1", 28001),
                                                              ("NRT", "ap-northeast-1", 28002)]
    assert cfg.settings.lambda_.idle_ttl_s == 7.5
    assert cfg.settings.origin_target("origin.edgelab.local").port == 28888
    names = {f.name: f for f in cfg.settings.functions}
    assert {"edge-hello", "lt-slow", "lt-origin-request"} <= set(names)
    assert all(f.dir.is_dir() for f in names.values())


def test_chaos_file_is_validated_before_anything_starts(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[fault]]\nkind = 'origin-error'\n")
    out = tmp_path / "out"
    assert loadtest.run_loadtest(_parse("hits", "--chaos", str(bad), "--out", str(out))) == 2
    assert f"--chaos {bad}: line 1: fault[1]: an origin-error fault needs status" in capsys.readouterr().err
    assert not out.exists()


def test_realistic_cold_starts_setting_of_the_run(tmp_path):
    data = stack_settings(state_dir=tmp_path / "state", api_port=29999, origin_port=28888,
                          pops=[("IAD", "us-east-1", 28001)], idle_ttl_s=7.5, realistic_cold_starts=True)
    path = tmp_path / "settings.toml"
    path.write_text(to_toml(data))
    cfg = load_stack_config(state_dir=None, settings=str(path), distribution=None)
    assert cfg.settings.lambda_.realistic_cold_starts and cfg.settings.lambda_.cold_start_seed == 0


def test_hand_run_settings_file_loads():
    cfg = load_stack_config(state_dir=None, settings=str(STACK_DIR / "settings.toml"), distribution=None)
    assert cfg.settings.lambda_.idle_ttl_s == 10
    assert {"/echo/*", "/throttle/*"} <= {b.path_pattern for b in cfg.distribution.behaviors}


def test_to_toml_rejects_unknown_types():
    with pytest.raises(TypeError):
        to_toml({"x": object()})


def test_progress_from_a_growing_history(tmp_path):
    history = tmp_path / "h.csv"
    assert last_aggregated(history) is None
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,Total Request Count,Total Failure Count\n"
    history.write_text(header + "1,0,,Aggregated,0,0,N/A,N/A,0,0\n")
    history.write_text(history.read_text() + "2,4,GET,/ [warm|hit@IAD],10,0,3,5,20,0\n"
                       "2,4,,Aggregated,12.5,0,3,7,25,1\n3,4,GET,/ [cold|hit@IAD],1,0,40,40,1,0")
    row = last_aggregated(history)
    assert row["User Count"] == "4" and row["Total Request Count"] == "25"
    line = progress_line(row, 12.4, 120, "steady")
    assert "12s/120s" in line and "phase steady" in line and "req/s    12.5" in line and "failures    1" in line
    assert "starting" in progress_line(None, 1, 120, None)


def test_locust_command_lines(tmp_path):
    from edge.control.loadtest.run import LocustRun

    phases_mod = loadtest._load_phases()
    pops = [("IAD", "http://127.0.0.1:1"), ("FRA", "http://127.0.0.1:2")]
    args = _parse("hits", "--duration", "30")
    run = LocustRun(tmp_path, loadtest.LOADTESTS, loadtest.SCENARIOS["hits"], args, 8, pops, None, phases_mod,
                    "http://api", idle_ttl=10)
    cmd = run.command()
    assert cmd[cmd.index("-u") + 1] == "8" and cmd[cmd.index("-t") + 1] == "30s" and "--config" in cmd
    assert cmd[cmd.index("-H") + 1] == "http://127.0.0.1:1" and "--headless" in cmd
    env = run.environment()
    assert env["EDGELAB_POPS"] == "IAD=http://127.0.0.1:1,FRA=http://127.0.0.1:2" and "EDGELAB_PHASES" not in env
    phases = phases_mod.cold_warm_phases(60, 6, 10)
    shaped = LocustRun(tmp_path, loadtest.LOADTESTS, loadtest.SCENARIOS["cold-warm"], _parse("cold-warm"), 6, pops,
                       phases, phases_mod, "http://api", idle_ttl=10)
    cmd = shaped.command()
    assert not {"-u", "-r", "-t", "--config"} & set(cmd)
    assert phases_mod.loads(shaped.environment()["EDGELAB_PHASES"]) == phases
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["idle_gap_s"] == 10 and info["duration_s"] == 60 and info["phases"][0][0] == "burst"


def test_reset_answers(monkeypatch, capsys):
    answers = []
    monkeypatch.setattr(loadtest, "api_call", lambda api, method, path, body=None: answers.pop(0))
    answers.append({"pops": {"IAD": {"cache": {"cleared": 3}, "functions": {"environments_retired": True}}}})
    loadtest.reset("http://api")
    assert capsys.readouterr().err == ""
    answers.append({"pops": {"FRA": {"cache": {"cleared": 0}, "functions": {}}}})
    loadtest.reset("http://api")
    assert "POP FRA's warm environments" in capsys.readouterr().err
    answers.append({"pops": {"REC-USE1": {"cache": {"running": False}, "functions": {"running": False}}}})
    loadtest.reset("http://api")  # a tier node still starting: nothing warm there, nothing to warn about
    assert capsys.readouterr().err == ""
    answers.append({"pops": {"NRT": {"cache": {"error": "POP NRT unreachable"}, "functions": {}}}})
    with pytest.raises(RuntimeError, match="reset failed on POP NRT: POP NRT unreachable"):
        loadtest.reset("http://api")
