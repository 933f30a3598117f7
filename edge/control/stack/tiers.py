"""Which tier nodes a stack runs and what they are called (light: ``serve`` imports it before any process starts).

One node per region of :func:`edge.cdn.tiers.tier_regions`: every POP's REC region and every Origin Shield Region
of the distribution the stack starts with (``--distribution``). A shield Region that an UpdateDistribution adds
later has no node until the next start: its requests go from the REC to the origin (one log line says so).
``[tiers] enabled = false``: none (every POP miss goes to the origin).
"""

from __future__ import annotations

from edge.cdn.tiers import tier_regions
from edge.control.stack.config import StackConfig
from edge.control.stack.supervisor import Child, python_module_argv

__all__ = ["stack_tier_regions", "tier_children", "tier_name"]

_COMPASS = {"northeast": "NE", "southeast": "SE", "northwest": "NW", "southwest": "SW"}


def tier_name(region: str) -> str:
    """The node's name, short enough for its admin socket (``StackConfig.admin_socket``): ``REC-USE1`` for
    us-east-1, ``REC-APNE1`` for ap-northeast-1, ``REC-EUC1`` for eu-central-1."""
    parts = region.split("-")
    middle = "".join(_COMPASS.get(p, p[:1]) for p in parts[1:-1])
    return f"REC-{parts[0]}{middle}{parts[-1] if len(parts) > 1 else ''}".upper()


def stack_tier_regions(cfg: StackConfig) -> list[str]:
    """The regions whose tier node the stack starts (see the module docstring)."""
    if not cfg.settings.tiers.enabled:
        return []
    return tier_regions(cfg.pops, [cfg.distribution])


def tier_children(cfg: StackConfig, common: list[str], extra: list[str]) -> list[Child]:
    """The supervisor's children for the tier nodes, started after the POPs (each binds a free loopback port: it
    must not take one a POP is about to bind) and together (``Child.ready_later``: spawned at once, then awaited;
    until its REC is up a POP's misses go to the origin)."""
    return [Child(f"tier-{region}", python_module_argv("edge.control.stack.node", "tier", "--region", region,
                                                       *common, *extra),
                  health_unix=str(cfg.admin_socket(tier_name(region))), ready_later=True)
            for region in stack_tier_regions(cfg)]
