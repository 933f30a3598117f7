"""The stack ``edgelab loadtest`` starts for a run: ``edgelab serve`` with the load-test distribution and the demo
origin, as subprocesses on free loopback ports, with a temporary state directory; stopped and reaped at the end.

The settings file is generated from ``loadtests/stack/settings.toml`` (which stays runnable by hand): ports,
state directory, POPs and ``[lambda] idle_ttl_s`` are the run's, every path is made absolute.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge.cdn.config.settings import DEFAULT_POPS
from edge.control.stack.config import REPO_ROOT

STACK_DIR = REPO_ROOT / "loadtests" / "stack"
ORIGIN_DOMAIN = "origin.edgelab.local"


class StackError(RuntimeError):
    """The stack could not be started (the message says why and where its log is)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for settings files: top-level scalars, tables of values, arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list)
             or (isinstance(v, list) and not all(isinstance(x, dict) for x in v))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{json.dumps(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in data.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def stack_settings(*, state_dir: Path, api_port: int, origin_port: int, pops: list[tuple[str, str, int]],
                   idle_ttl_s: float, template: Path = STACK_DIR / "settings.toml",
                   realistic_cold_starts: bool = False) -> dict[str, Any]:
    """The run's settings: the template with the run's ports, POPs (name, region, port), state and idle expiry
    (and ``[lambda] realistic_cold_starts`` when asked: ``edgelab loadtest --realistic-cold-starts``)."""
    data = tomllib.loads(template.read_text())
    base = template.parent
    data["distribution"] = str((base / data["distribution"]).resolve())
    data["state_dir"] = str(state_dir)
    data["api_port"] = api_port
    data["origins"] = {ORIGIN_DOMAIN: f"127.0.0.1:{origin_port}"}
    data.setdefault("lambda", {})["idle_ttl_s"] = idle_ttl_s
    if realistic_cold_starts:
        data["lambda"]["realistic_cold_starts"] = True
    data["pops"] = [{"name": n, "region": r, "host": "127.0.0.1", "port": p} for n, r, p in pops]
    for fn in data.get("functions", []):
        fn["dir"] = str((base / fn["dir"]).resolve())
    return data


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """PR_SET_PDEATHSIG(SIGTERM): if the loadtest process is killed outright, the stack still stops."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class OwnStack:
    """``edgelab serve`` + the demo origin for one run. ``start()`` waits for readiness; ``stop()`` is idempotent."""

    def __init__(self, log_dir: Path, *, idle_ttl_s: float, pops: list[str] | None, multi: bool,
                 realistic_cold_starts: bool = False) -> None:
        known = {p.name: p.region for p in DEFAULT_POPS}
        names = pops or (list(known) if multi else ["IAD"])
        unknown = [n for n in names if n not in known]
        if unknown:
            raise StackError(f"unknown POP {', '.join(unknown)}: a started stack has {', '.join(known)} "
                             "(use --api to target another stack)")
        self.log_dir = log_dir
        self.tmp = Path(tempfile.mkdtemp(prefix="edgelab-loadtest-"))
        self.api_port, self.origin_port = free_port(), free_port()
        self.pops = [(n, known[n], free_port()) for n in dict.fromkeys(names)]
        self.settings_path = self.tmp / "settings.toml"
        self.settings_path.write_text(to_toml(stack_settings(
            state_dir=self.tmp / "state", api_port=self.api_port, origin_port=self.origin_port, pops=self.pops,
            idle_ttl_s=idle_ttl_s, realistic_cold_starts=realistic_cold_starts)))
        shutil.copy(self.settings_path, log_dir / "stack-settings.toml")
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:  # own session: a Ctrl+C in the terminal reaches us, and we stop the stack in order
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            log.close()
        self.procs.append((name, proc))

    def start(self, timeout_s: float = 120) -> None:
        self._spawn("origin", [sys.executable, "-m", "origin", "--host", "127.0.0.1", "--port", str(self.origin_port)])
        self._spawn("stack", [sys.executable, "-m", "edge.control.cli.main", "serve", "--settings", str(self.settings_path),
                              "--log-level", "WARNING"])
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise StackError(f"{name} exited with {proc.returncode} while starting; see "
                                     f"{self.log_dir / (name + '.log')}")
            if time.monotonic() > deadline:
                raise StackError(f"the stack was not ready after {timeout_s:g} s; see {self.log_dir / 'stack.log'}")
            time.sleep(0.25)

    def _ready(self) -> bool:
        """Every POP answers its health check through the admin API (GET /edgelab/v1/status)."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/edgelab/v1/status", timeout=2) as resp:
                status = json.loads(resp.read())
            with urllib.request.urlopen(f"http://127.0.0.1:{self.origin_port}/__health", timeout=2):
                pass
        except (urllib.error.URLError, OSError, ValueError):
            return False
        pops = status.get("pops", [])
        return len(pops) == len(self.pops) and all(
            isinstance(p.get("health"), dict) and "error" not in p["health"] for p in pops)

    def stop(self) -> None:
        """SIGINT to ``edgelab serve`` (it stops its children in order), SIGTERM to the origin; reap both."""
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if name == "stack" else signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
