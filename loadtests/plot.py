"""The latency plots of a load-test report.

With matplotlib: ``latency.png``, four labelled panels: the latency distributions (empirical CDF, log scale) by
start (cold, warm, throttled, no function), by cache outcome (hit, refresh, miss, generated, throttled, error...),
by cache outcome at each POP (a FRA or NRT miss pays that region's simulated origin latency: split out, it no
longer shows as steps in the "warm" curve), and the latency of every request over time by start, throttled
requests included, with the phases shaded. Without matplotlib (or ``force_svg``): ``latency.svg``, the CDFs by
start drawn by hand. Titles name what is drawn (e.g. "cold vs warm vs throttled"), never a fixed pair.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLORS = {"cold": "#1f77b4", "warm": "#d62728", "nofn": "#7f7f7f", "throttled": "#ff7f0e"}
_ORDER = ("cold", "warm", "throttled", "nofn")
_CACHE_ORDER = ("hit", "refresh", "miss", "generated", "throttled", "error", "fn-error", "none")
_PALETTE = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#1f77b4", "#d62728", "#ff7f0e",
            "#7f7f7f")


def _groups(samples: Sequence[Any], key: Any = lambda s: s.start) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        groups[key(s)].append(max(s.latency_ms, 0.01))
    return {k: sorted(v) for k, v in groups.items()}


def _ordered(groups: dict[str, Any], order: Sequence[str]) -> list[str]:
    return [k for k in order if k in groups] + sorted(set(groups) - set(order))


def _color(name: str, i: int) -> str:
    return COLORS.get(name) or _PALETTE[i % len(_PALETTE)]


def start_title(groups: dict[str, Any]) -> str:
    """"latency by start: cold vs warm vs throttled" with the starts present."""
    return "latency by start: " + " vs ".join(_ordered(groups, _ORDER))


def _ecdf(values: list[float], points: int = 400) -> list[tuple[float, float]]:
    """(value, fraction <= value) at most ``points`` steps of a sorted list."""
    n = len(values)
    step = max(1, n // points)
    out = [(values[i], (i + 1) / n) for i in range(0, n, step)]
    if out[-1][1] < 1.0:
        out.append((values[-1], 1.0))
    return out


def write_plot(folder: Path, samples: Sequence[Any], phases: Sequence[Any], t0: float | None, *,
               force_svg: bool = False) -> Path:
    """Write the plot into ``folder`` and return its path (PNG when matplotlib imports, else SVG)."""
    if not force_svg:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
        if plt is not None:
            return _png(plt, folder / "latency.png", samples, phases, t0)
    return _svg(folder / "latency.svg", _groups(samples))


def _cdf_panel(ax: Any, groups: dict[str, list[float]], order: Sequence[str], title: str) -> None:
    for i, name in enumerate(_ordered(groups, order)):
        pts = _ecdf(groups[name])
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color=_color(name, i),
                label=f"{name} (n={len(groups[name])})")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _png(plt: Any, path: Path, samples: Sequence[Any], phases: Sequence[Any], t0: float | None) -> Path:
    groups = _groups(samples)
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.6))
    (left, by_cache), (by_pop, right) = axes
    _cdf_panel(left, groups, _ORDER, start_title(groups))
    _cdf_panel(by_cache, _groups(samples, lambda s: s.cache or "none"), _CACHE_ORDER, "latency by cache outcome")
    at_pop = _groups(samples, lambda s: f"{s.cache or 'none'}@{s.pop or '?'}")
    _cdf_panel(by_pop, at_pop, [f"{c}@{p}" for c in _CACHE_ORDER for p in sorted({s.pop for s in samples})],
               "latency by cache outcome at each POP")
    base = t0 if t0 is not None else min(s.t for s in samples)
    starts = _ordered(groups, _ORDER)
    for i, start in enumerate(sorted(starts, key=lambda k: k == "cold")):  # the few cold points last, on top
        xs = [s.t - base for s in samples if s.start == start]
        ys = [max(s.latency_ms, 0.01) for s in samples if s.start == start]
        rare = start in ("cold", "throttled")
        right.scatter(xs, ys, s=14 if rare else 4, alpha=0.9 if rare else 0.4, color=_color(start, i),
                      marker="x" if start == "throttled" else "o", label=f"{start} (n={len(xs)})",
                      zorder=3 if rare else 2)
    begin = 0.0
    for i, ph in enumerate(phases):
        right.axvspan(begin, ph.until_s, color="#000000", alpha=0.04 if i % 2 else 0.09, lw=0)
        right.text((begin + ph.until_s) / 2, 0.98, ph.name, transform=right.get_xaxis_transform(),
                   ha="center", va="top", fontsize=8)
        begin = ph.until_s
    right.set_yscale("log")
    right.set_xlabel("time since start (s)")
    right.set_ylabel("latency (ms, log scale)")
    right.set_title("every request over time, by start")
    right.grid(True, which="both", alpha=0.3)
    right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _svg(path: Path, groups: dict[str, list[float]]) -> Path:
    w, h, ml, mr, mt, mb = 720, 420, 60, 20, 30, 50
    values = [v for vs in groups.values() for v in vs] or [1.0]
    lo = math.floor(math.log10(min(values)))
    hi = max(lo + 1, math.ceil(math.log10(max(values))))

    def x(v: float) -> float:
        return ml + (math.log10(v) - lo) / (hi - lo) * (w - ml - mr)

    def y(f: float) -> float:
        return h - mb - f * (h - mt - mb)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="12"><rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="18" text-anchor="middle">{start_title(groups)}</text>']
    parts += [f'<line x1="{x(10 ** d):.1f}" y1="{y(0):.1f}" x2="{x(10 ** d):.1f}" y2="{y(1):.1f}" '
              f'stroke="#ddd"/><text x="{x(10 ** d):.1f}" y="{h - mb + 16}" text-anchor="middle">'
              f'{10 ** d:g}</text>' for d in range(lo, hi + 1)]
    parts += [f'<line x1="{ml}" y1="{y(f):.1f}" x2="{w - mr}" y2="{y(f):.1f}" stroke="#eee"/>'
              f'<text x="{ml - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{f:g}</text>' for f in (0, 0.25, 0.5, 0.75, 1.0)]
    parts.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">latency (ms, log scale)</text>')
    for i, start in enumerate(_ordered(groups, _ORDER)):
        pts = _ecdf(groups[start])
        d = " ".join(f"{x(v):.1f},{y(fr):.1f}" for v, fr in pts)
        color = _color(start, i)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"/>')
        parts.append(f'<text x="{w - mr - 150}" y="{h - mb - 60 + 16 * i}" fill="{color}">'
                     f'{start} (n={len(groups[start])})</text>')
    parts.append("</svg>\n")
    path.write_text("\n".join(parts))
    return path
