"""The stack's configuration, assembled once from the command line, the settings TOML and the distribution.

Demo mode (no ``--distribution`` and none named in the settings): the demo origin (``origin/``) behind the POPs,
with the sample distribution ``deploy/demo/distribution.json`` and settings ``deploy/demo/settings.toml``
(which declares the example functions). Every process of the stack calls :func:`load_stack_config` with the same
arguments, so they all see the same configuration.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edge.cdn.config.distribution import Distribution, load_distribution
from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import OriginTarget, PopSettings, Settings, apply_pop_overrides, load_settings
from edge.control.events_api.schedule import ScheduleError, parse_schedule

REPO_ROOT = Path(__file__).resolve().parents[3]  # the checkout: edge/control/stack/config.py
DEMO_DIR = REPO_ROOT / "deploy" / "demo"
DEMO_DISTRIBUTION = DEMO_DIR / "distribution.json"
DEMO_SETTINGS = DEMO_DIR / "settings.toml"
DEMO_ORIGIN_DOMAIN = "origin.edgelab.local"
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    settings_path: Path | None
    distribution_path: Path
    settings: Settings
    distribution: Distribution
    demo: bool
    api_port: int
    origin_port: int

    @property
    def pops(self) -> tuple[PopSettings, ...]:
        return self.settings.pops

    @property
    def run_dir(self) -> Path:
        """Where the POPs' admin sockets live (short enough for AF_UNIX)."""
        run = self.state_dir / "run"
        if len(str(run / "pop-XXXXXXXX.sock")) <= _UNIX_PATH_MAX:
            return run
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"edgelab-{digest}"

    @property
    def tls_dir(self) -> Path:
        """The local CA and the POPs' certificate (``edge.cdn.server.tls``): trust ``tls_dir/edgelab-ca.pem``."""
        return self.state_dir / "tls"

    def admin_socket(self, pop_name: str) -> Path:
        return self.run_dir / f"pop-{pop_name}.sock"


def load_stack_config(*, state_dir: str | None, settings: str | None, distribution: str | None,
                      pop_overrides: Sequence[str] = (), api_port: int | None = None,
                      origin_port: int = 8000) -> StackConfig:
    """Raises ``ConfigError`` (a ValueError) naming the offending field."""
    demo = distribution is None
    settings_path = Path(settings).resolve() if settings else None
    if settings_path is None and demo:
        settings_path = DEMO_SETTINGS
    s = load_settings(settings_path)
    if s.distribution is not None and distribution is None:
        distribution, demo = str(s.distribution), False
    if demo:
        # The demo distribution names a fictional origin domain; point it at the demo origin's port.
        origins = dict(s.origins)
        origins[DEMO_ORIGIN_DOMAIN] = OriginTarget(host="127.0.0.1", port=origin_port)
        s = replace(s, origins=origins)
    s = apply_pop_overrides(s, pop_overrides)
    for i, decl in enumerate(s.schedules):  # the control process would refuse them at start: say so now
        try:
            parse_schedule(decl.schedule)
        except ScheduleError as exc:
            raise ConfigError(f"schedules[{i}].schedule", str(exc)) from None
    dist_path = Path(distribution).resolve() if distribution else DEMO_DISTRIBUTION
    dist = load_distribution(dist_path, s)
    sd = Path(state_dir).expanduser() if state_dir else s.state_dir
    return StackConfig(state_dir=sd.resolve(), settings_path=settings_path, distribution_path=dist_path,
                       settings=s, distribution=dist, demo=demo,
                       api_port=api_port if api_port is not None else s.api_port, origin_port=origin_port)
