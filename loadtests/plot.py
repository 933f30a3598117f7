"""The cold vs warm latency plot of a load-test report.

With matplotlib: ``latency.png`` with the latency distributions (empirical CDF, log scale) of cold, warm and
function-less requests, and the latency of every request over time with the phases shaded. Without matplotlib
(or ``force_svg``): ``latency.svg``, the same CDFs drawn by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLORS = {"cold": "#1f77b4", "warm": "#d62728", "nofn": "#7f7f7f"}
_ORDER = ("cold", "warm", "nofn")


def _groups(samples: Sequence[Any]) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        groups[s.start].append(max(s.latency_ms, 0.01))
    return {k: sorted(v) for k, v in groups.items()}


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


def _png(plt: Any, path: Path, samples: Sequence[Any], phases: Sequence[Any], t0: float | None) -> Path:
    groups = _groups(samples)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for start in [k for k in _ORDER if k in groups] + sorted(set(groups) - set(_ORDER)):
        pts = _ecdf(groups[start])
        left.step([p[0] for p in pts], [p[1] for p in pts], where="post", color=COLORS.get(start),
                  label=f"{start} (n={len(groups[start])})")
    left.set_xscale("log")
    left.set_xlabel("latency (ms, log scale)")
    left.set_ylabel("fraction of requests")
    left.set_title("latency distribution: cold vs warm")
    left.grid(True, which="both", alpha=0.3)
    left.legend(loc="lower right")
    base = t0 if t0 is not None else min(s.t for s in samples)
    for start in reversed(_ORDER):  # the few cold points last, bigger, on top of the many warm ones
        xs = [s.t - base for s in samples if s.start == start]
        ys = [max(s.latency_ms, 0.01) for s in samples if s.start == start]
        if xs:
            right.scatter(xs, ys, s=14 if start == "cold" else 4, alpha=0.9 if start == "cold" else 0.4,
                          color=COLORS[start], label=start, zorder=3 if start == "cold" else 2)
    begin = 0.0
    for i, ph in enumerate(phases):
        right.axvspan(begin, ph.until_s, color="#000000", alpha=0.04 if i % 2 else 0.09, lw=0)
        right.text((begin + ph.until_s) / 2, 0.98, ph.name, transform=right.get_xaxis_transform(),
                   ha="center", va="top", fontsize=8)
        begin = ph.until_s
    right.set_yscale("log")
    right.set_xlabel("time since start (s)")
    right.set_ylabel("latency (ms, log scale)")
    right.set_title("every request over time")
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
             f'<text x="{w / 2}" y="18" text-anchor="middle">latency distribution: cold vs warm</text>']
    parts += [f'<line x1="{x(10 ** d):.1f}" y1="{y(0):.1f}" x2="{x(10 ** d):.1f}" y2="{y(1):.1f}" '
              f'stroke="#ddd"/><text x="{x(10 ** d):.1f}" y="{h - mb + 16}" text-anchor="middle">'
              f'{10 ** d:g}</text>' for d in range(lo, hi + 1)]
    parts += [f'<line x1="{ml}" y1="{y(f):.1f}" x2="{w - mr}" y2="{y(f):.1f}" stroke="#eee"/>'
              f'<text x="{ml - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{f:g}</text>' for f in (0, 0.25, 0.5, 0.75, 1.0)]
    parts.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">latency (ms, log scale)</text>')
    for i, start in enumerate([k for k in _ORDER if k in groups] + sorted(set(groups) - set(_ORDER))):
        pts = _ecdf(groups[start])
        d = " ".join(f"{x(v):.1f},{y(fr):.1f}" for v, fr in pts)
        color = COLORS.get(start, "#2ca02c")
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{d}"/>')
        parts.append(f'<text x="{w - mr - 150}" y="{h - mb - 60 + 16 * i}" fill="{color}">'
                     f'{start} (n={len(groups[start])})</text>')
    parts.append("</svg>\n")
    path.write_text("\n".join(parts))
    return path
