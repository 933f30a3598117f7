"""The stack's configuration, assembled once from the command line, the settings TOML and the distribution.

Demo mode (no ``--distribution`` and none named in the settings): the demo origin (``origin/``) behind the POPs,
with the sample distribution ``deploy/demo/distribution.json`` and settings ``deploy/demo/settings.toml``
(which declares the example functions). Every process of the stack calls :func:`load_stack_config` with the same
arguments, so they all see the same configuration.

Own-app mode (``--origin URL``): a minimal distribution for one origin (:func:`minimal_distribution`) is written
to ``<state dir>/distribution.json`` when that file does not exist yet (an edited one is kept), and its fictional
origin domain ``app.edgelab.local`` is mapped to ``URL`` (as an ``[origins]`` entry would).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edge.cdn.config.distribution import Distribution, load_distribution
from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import (
    OriginTarget,
    PopSettings,
    Settings,
    apply_pop_overrides,
    load_settings,
    parse_origin_target,
)
from edge.control.events_api.schedule import ScheduleError, parse_schedule

REPO_ROOT = Path(__file__).resolve().parents[3]  # the checkout: edge/control/stack/config.py
DEMO_DIR = REPO_ROOT / "deploy" / "demo"
DEMO_DISTRIBUTION = DEMO_DIR / "distribution.json"
DEMO_SETTINGS = DEMO_DIR / "settings.toml"
DEMO_ORIGIN_DOMAIN = "origin.edgelab.local"
APP_ORIGIN_DOMAIN = "app.edgelab.local"  # the --origin app's domain in the distribution written for it
OWN_DISTRIBUTION_FILE = "distribution.json"  # under the state directory
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
    origin_url: str | None = None  # --origin: the app behind the POPs (distribution_path was written for it)

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


def minimal_distribution(origin_url: str) -> dict[str, object]:
    """The DistributionConfig ``--origin`` writes: one custom origin (``app.edgelab.local``, mapped to the app),
    every method allowed, the origin's own Cache-Control honoured with query strings in the cache key
    (Managed-UseOriginCacheControlHeaders-QueryStrings) and every viewer header, cookie and query string but Host
    forwarded to the app (Managed-AllViewerExceptHostHeader)
    (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html,
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-origin-request-policies.html)."""
    methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    return {"DistributionConfig": {
        "CallerReference": "edgelab-serve-origin",
        "Comment": f"written by `edgelab serve --origin {origin_url}`: edit it, or copy it and use --distribution",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "app", "DomainName": APP_ORIGIN_DOMAIN,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all", "Compress": True,
            "AllowedMethods": {"Quantity": 7, "Items": methods,
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
            "CachePolicyId": "4cc15a8a-d715-48a4-82b8-cc0b614638fe",
            "OriginRequestPolicyId": "b689b0a8-53d0-40ab-baf2-68738e2966ac"},
    }}


def app_origin_target(origin_url: str) -> OriginTarget:
    """Where ``--origin URL`` is reached: ``http://host:port`` as a custom origin's ``host:port`` (the POP's direct
    origin connection), an https URL or one with a path through ``[origins]``'s URL form."""
    parts = urllib.parse.urlsplit(origin_url)
    if parts.scheme == "http" and parts.hostname and parts.path in ("", "/") and not parts.query:
        try:
            port = parts.port or 80
        except ValueError:
            raise ConfigError("--origin", f"bad port in {origin_url!r}") from None
        return OriginTarget(host=parts.hostname, port=port)
    return parse_origin_target(origin_url, "--origin", Path.cwd())


def write_own_distribution(state_dir: Path, origin_url: str) -> Path:
    """``<state_dir>/distribution.json`` for ``--origin``, written (atomically) unless it exists already."""
    path = state_dir / OWN_DISTRIBUTION_FILE
    if path.exists():
        return path
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(minimal_distribution(origin_url), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_stack_config(*, state_dir: str | None, settings: str | None, distribution: str | None,
                      pop_overrides: Sequence[str] = (), api_port: int | None = None,
                      origin_port: int = 8000, origin: str | None = None) -> StackConfig:
    """Raises ``ConfigError`` (a ValueError) naming the offending field. ``origin``: ``--origin`` (see the module
    docstring); the distribution file is written here when missing."""
    if origin is not None and distribution is not None:
        raise ConfigError("--origin", "give either --origin (your app, with a distribution written for it) or "
                                      "--distribution (your own DistributionConfig), not both")
    demo = distribution is None and origin is None
    settings_path = Path(settings).resolve() if settings else None
    if settings_path is None and demo:
        settings_path = DEMO_SETTINGS
    s = load_settings(settings_path)
    if origin is not None:
        if not origin.startswith(("http://", "https://")):
            raise ConfigError("--origin", f"expected your app's URL such as http://127.0.0.1:3000, got {origin!r}")
        origins = dict(s.origins)
        origins[APP_ORIGIN_DOMAIN] = app_origin_target(origin)
        s = replace(s, origins=origins)
        sd = Path(state_dir).expanduser() if state_dir else s.state_dir
        distribution = str(write_own_distribution(sd.resolve(), origin))
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
                       api_port=api_port if api_port is not None else s.api_port, origin_port=origin_port,
                       origin_url=origin)
