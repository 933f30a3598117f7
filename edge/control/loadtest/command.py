"""``edgelab loadtest SCENARIO``: locust load tests of cold vs warm latency through the CDN, one command.

Locust runs in a subprocess (its gevent monkey-patching breaks asyncio; nothing in ``edge`` imports it). The run:

1. target: a running stack (``--api URL``) or its own one: ``edgelab serve`` with the load-test distribution
   (``loadtests/stack/``: the demo plus ``/echo/*`` and ``/throttle/*``), the demo origin, free ports, a temporary
   state directory and a short ``[lambda] idle_ttl_s`` (``--idle-ttl``, default 10 s) so the cold/warm
   experiment fits in two minutes; stopped with SIGINT and reaped at the end;
2. ``POST /edgelab/v1/reset`` (warm environments of every process and every POP cache), and the scenario's own preparation (``throttle``
   sets a low reserved concurrency, restored afterwards); with ``--chaos FILE``, that edge chaos scenario is applied
   to every POP for the run (``PUT /edgelab/v1/chaos``, cleared at the end; a copy goes to the report folder);
   ``--realistic-cold-starts`` starts the run's stack with the realistic cold-start model;
3. ``locust --headless`` with the scenario's locustfile, a progress line while it runs;
4. a report folder ``reports/<timestamp>-<scenario>/``: locust's CSV and HTML, ``samples.csv`` (one row per
   request), ``summary.md`` (p50/p95/p99 per bucket, cold vs warm, per phase, per function) and the latency plot
   (written by ``python -m loadtests.report`` in another subprocess: matplotlib stays out of this process).

Exit status: locust's (0 ok, 1 some requests failed), 2 for a usage or setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from edge.control.cli.api_client import request_json
from edge.control.stack.config import REPO_ROOT

if TYPE_CHECKING:
    from edge.control.loadtest.stack import OwnStack

LOADTESTS = REPO_ROOT / "loadtests"
INSTALL_HINT = ("edgelab loadtest needs locust (and matplotlib for the PNG plot): "
                "pip install -e '.[load]'  (or: .venv/bin/pip install 'locust>=2.20,<3' 'matplotlib>=3.8,<4')")


@dataclass(frozen=True)
class Scenario:
    locustfile: str
    users: int
    spawn_rate: float
    multi_pop: bool  # False: one POP (the first of --pop, default IAD)
    help: str
    shape: bool = False  # the locustfile's LoadTestShape drives the users (cold/warm phases)
    reserved: bool = False  # sets a reserved concurrency on THROTTLED_FUNCTION for the run


THROTTLED_FUNCTION = "lt-slow"
SCENARIOS = {
    "cold-warm": Scenario("cold_warm.py", 12, 12, True, "burst after a reset -> steady warm -> idle gap longer "
                          "than the idle expiry -> burst again, on every POP", shape=True),
    "hits": Scenario("hits.py", 8, 8, False, "cache hits on a few objects (viewer functions on every hit)"),
    "misses": Scenario("misses.py", 8, 8, False, "cache misses on unique keys (every request goes to the origin)"),
    "viewer-request": Scenario("viewer_request.py", 16, 1, False,
                               "viewer-request function cold vs warm while concurrency ramps up by 1 user/s"),
    "origin-request": Scenario("origin_request.py", 8, 8, False, "origin-request function on every request"),
    "throttle": Scenario("throttle.py", 12, 12, False, "a slow viewer-request function at a low reserved "
                         "concurrency (--reserved): throttled 503s vs served", reserved=True),
    "multi-pop": Scenario("multi_pop.py", 12, 12, True, "hits and misses on several POPs at once"),
}


def add_loadtest_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("loadtest", help="run a locust load test (cold vs warm latency) and write a report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=sorted(SCENARIOS), metavar="SCENARIO",
                   help="; ".join(f"{k}: {v.help}" for k, v in sorted(SCENARIOS.items())))
    p.add_argument("--users", type=int, default=None, help="concurrent users (default: per scenario)")
    p.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: per scenario)")
    p.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    p.add_argument("--pop", action="append", default=[], metavar="NAME",
                   help="POP(s) to load (repeatable; default: IAD, or every POP for multi-POP scenarios)")
    p.add_argument("--api", default=None, metavar="URL",
                   help="target a running stack (e.g. http://127.0.0.1:9001) instead of starting one")
    p.add_argument("--idle-ttl", type=float, default=10.0,
                   help="[lambda] idle_ttl_s of the stack started for the run (default 10 s)")
    p.add_argument("--idle-gap", type=float, default=None,
                   help="cold-warm idle gap in seconds (default: 2 x --idle-ttl; required with --api)")
    p.add_argument("--reserved", type=int, default=2, help="reserved concurrency of the throttle scenario")
    p.add_argument("--out", default="reports", help="parent folder of the report folders (default ./reports)")
    p.add_argument("--no-reset", action="store_true", help="do not reset warm pools and caches first")
    p.add_argument("--chaos", default=None, metavar="FILE",
                   help="an edge chaos scenario (TOML) applied to every POP for the run, cleared at the end")
    p.add_argument("--realistic-cold-starts", action="store_true",
                   help="the started stack adds modelled AWS-like Init delays to cold starts ([lambda] "
                        "realistic_cold_starts; for --api, start that stack with edgelab serve --realistic-cold-starts)")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="locust processes generating the load on this machine (default 1): N > 1 runs locust's "
                        "distributed mode, a master and N workers, and merges the workers' samples into one report")
    return p


def _load_phases() -> ModuleType:
    """``loadtests/phases.py`` (pure) by path: the phases are defined once, for the runner and the shape."""
    spec = importlib.util.spec_from_file_location("edgelab_loadtests_phases", LOADTESTS / "phases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up while building the class
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


api_call = request_json  # JSON call to the stack's API; ApiError (a RuntimeError) with the status and body


def select_pops(available: list[dict[str, str]], wanted: list[str], multi: bool) -> list[tuple[str, str]]:
    """[(name, url)] of the POPs to load; ValueError naming the known POPs for an unknown name."""
    by_name = {p["name"].upper(): p["url"] for p in available}
    names = [w.upper() for w in wanted] or (list(by_name) if multi else ["IAD" if "IAD" in by_name else
                                                                         next(iter(by_name))])
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown POP {', '.join(unknown)}; the stack has {', '.join(by_name)}")
    return [(n, by_name[n]) for n in names]


def reset(api: str) -> None:
    """Retire warm environments (control process and every POP) and clear every POP cache, through the API.

    RuntimeError when the API or a POP reports a failure; a warning when a POP's answer does not confirm that
    its warm environments were retired (the first requests of the run might then be warm)."""
    result = api_call(api, "POST", "/edgelab/v1/reset", {})
    for name, outcome in (result.get("pops") or {}).items():
        parts = outcome if isinstance(outcome, dict) else {}
        errors = [str(v["error"]) for v in [parts, *parts.values()] if isinstance(v, dict) and "error" in v]
        if errors:
            raise RuntimeError(f"reset failed on POP {name}: {'; '.join(errors)}")
        functions = parts.get("functions")
        # a regional tier node still starting answers {"running": false}: it has no warm environment to retire
        if not (isinstance(functions, dict) and (functions.get("environments_retired") or functions.get("running") is False)):
            print(f"edgelab loadtest: warning: POST /edgelab/v1/reset did not confirm that POP {name}'s warm "
                  "environments were retired; its first requests may be warm", file=sys.stderr)


class ReservedConcurrency:
    """Set a function's reserved concurrency for the run; the previous setting is restored on exit."""

    def __init__(self, api: str, function: str, count: int) -> None:
        self.api, self.function, self.count = api, function, count
        self.path = f"/2017-10-31/functions/{function}/concurrency"
        self.previous: int | None = None

    def __enter__(self) -> ReservedConcurrency:
        try:
            current = api_call(self.api, "GET", self.path.replace("2017-10-31", "2019-09-30")) or {}
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nthe throttle scenario needs the load-test stack's function {self.function!r} "
                               "(edgelab serve --settings loadtests/stack/settings.toml)") from None
        self.previous = current.get("ReservedConcurrentExecutions")
        api_call(self.api, "PUT", self.path, {"ReservedConcurrentExecutions": self.count})
        time.sleep(1.5)  # POP processes pick registry changes up within a second
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is None:
            api_call(self.api, "DELETE", self.path)
        else:
            api_call(self.api, "PUT", self.path, {"ReservedConcurrentExecutions": self.previous})


def read_chaos(path: str) -> str:
    """The text of the ``--chaos`` scenario, validated here (the POPs' parser) before any stack starts; ValueError
    naming the file and the problem."""
    from edge.cdn.chaos.scenario import ScenarioError, parse_scenario

    try:
        text = Path(path).read_text()
        parse_scenario(text)
    except OSError as exc:
        raise ValueError(f"--chaos {path}: {exc.strerror}") from None
    except ScenarioError as exc:
        raise ValueError(f"--chaos {path}: {exc}") from None
    return text


class Chaos:
    """Apply an edge chaos scenario (``--chaos``) to every POP for the run and clear it afterwards (no-op for None)."""

    def __init__(self, api: str, text: str | None, folder: Path) -> None:
        self.api, self.text, self.folder = api, text, folder

    def __enter__(self) -> Chaos:
        if self.text is not None:
            (self.folder / "chaos.toml").write_text(self.text)
            api_call(self.api, "PUT", "/edgelab/v1/chaos", {"scenario": self.text})
        return self

    def __exit__(self, *exc: object) -> None:
        if self.text is not None:
            api_call(self.api, "DELETE", "/edgelab/v1/chaos")


def report_folder(out: str, scenario: str) -> Path:
    """A new ``<out>/<timestamp>-<scenario>`` folder (``-2``, ``-3``... when two runs start in one second)."""
    base = Path(out) / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{scenario}"
    Path(out).mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            folder.mkdir()
            return folder.resolve()
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a report folder under {out}")


def plan_phases(args: argparse.Namespace, scenario: Scenario, users: int, phases_mod: ModuleType) -> list[Any] | None:
    """Validate the arguments; the cold/warm phases of a shaped scenario (None otherwise). ValueError if bad."""
    if args.users is not None and args.users < 1:
        raise ValueError("--users must be >= 1")
    if args.duration < 1:
        raise ValueError("--duration must be >= 1 s")
    if args.reserved < 0:
        raise ValueError("--reserved must be >= 0")
    if getattr(args, "realistic_cold_starts", False) and args.api:
        raise ValueError("--realistic-cold-starts configures the stack the run starts; with --api, start that stack "
                         "with `edgelab serve --realistic-cold-starts` instead")
    if not 1 <= args.processes <= 64:
        raise ValueError("--processes must be between 1 and 64 (one locust worker per core is the useful most)")
    if not scenario.shape:
        return None
    gap = args.idle_gap if args.idle_gap is not None else (None if args.api else 2 * args.idle_ttl)
    if gap is None:
        raise ValueError("with --api, give --idle-gap longer than the server's [lambda] idle_ttl_s "
                         "(plus its reaper interval, a quarter of it)")
    return list(phases_mod.cold_warm_phases(args.duration, users, gap))


def run_loadtest(args: argparse.Namespace) -> int:
    """The ``edgelab loadtest`` command (see the module docstring)."""
    if importlib.util.find_spec("locust") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    if not (LOADTESTS / "common.py").exists():
        print(f"edgelab loadtest runs from a checkout: {LOADTESTS} not found", file=sys.stderr)
        return 2
    scenario = SCENARIOS[args.scenario]
    users = args.users or scenario.users
    phases_mod = _load_phases()
    try:
        phases = plan_phases(args, scenario, users, phases_mod)
    except ValueError as exc:
        print(f"edgelab loadtest: {exc}", file=sys.stderr)
        return 2
    from edge.control.loadtest.run import LocustRun  # imported when used: `edgelab --help` stays light
    from edge.control.loadtest.stack import OwnStack, StackError

    chaos_text = None
    if getattr(args, "chaos", None):
        try:
            chaos_text = read_chaos(args.chaos)
        except ValueError as exc:
            print(f"edgelab loadtest: {exc}", file=sys.stderr)
            return 2
    folder = report_folder(args.out, args.scenario)
    stack: OwnStack | None = None
    try:
        api = args.api
        if not api:
            stack = OwnStack(folder, idle_ttl_s=args.idle_ttl, pops=[p.upper() for p in args.pop] or None,
                             multi=scenario.multi_pop,
                             realistic_cold_starts=getattr(args, "realistic_cold_starts", False))
            print(f"edgelab loadtest: starting a stack for the run (logs in {folder})...", flush=True)
            stack.start()
            api = stack.api_url
        pops = select_pops(api_call(api, "GET", "/edgelab/v1/pops")["pops"], args.pop, scenario.multi_pop)
        if not args.no_reset:
            reset(api)
        run = LocustRun(folder, LOADTESTS, scenario, args, users, pops, phases, phases_mod, api,
                        idle_ttl=None if args.api else args.idle_ttl)
        with Chaos(api, chaos_text, folder):
            if scenario.reserved:
                with ReservedConcurrency(api, THROTTLED_FUNCTION, args.reserved):
                    code = run.run()
            else:
                code = run.run()
    except (StackError, RuntimeError, ValueError) as exc:
        print(f"\nedgelab loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nedgelab loadtest: interrupted", file=sys.stderr)
        return 130
    finally:
        if stack is not None:
            stack.stop()
    return run.write_report(code)
