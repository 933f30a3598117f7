"""The what-if report: Markdown, HTML (with the chart inline) and JSON, from a :class:`WhatIfResult`.

The chart is an SVG written here (grouped bars: hit ratio per POP and distribution, the log's own ratio first):
a few dozen lines, no plotting library to import in the CLI (matplotlib would add about a second of import time
to every run and is only in the ``load`` extra).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from edge.control.whatif.engine import Counters, WhatIfResult

__all__ = ["as_json", "chart_svg", "html_report", "markdown_report", "totals"]

_TRIGGERS = ("viewer-request", "origin-request", "origin-response", "viewer-response", "cff:viewer-request",
             "cff:viewer-response")
_COLORS = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _sum(items: Iterable[Counters]) -> Counters:
    out = Counters()
    for c in items:
        out.add(c)
    return out


def totals(result: WhatIfResult, label: str) -> Counters:
    return _sum(c for by_pattern in result.results.get(label, {}).values() for c in by_pattern.values())


def per_pop(result: WhatIfResult, label: str) -> dict[str, Counters]:
    return {pop: _sum(by_pattern.values()) for pop, by_pattern in result.results.get(label, {}).items()}


def per_pattern(result: WhatIfResult, label: str) -> dict[str, Counters]:
    out: dict[str, Counters] = {}
    for by_pattern in result.results.get(label, {}).values():
        for pattern, c in by_pattern.items():
            out.setdefault(pattern, Counters()).add(c)
    return out


def _pops(result: WhatIfResult) -> list[str]:
    return sorted(result.recorded, key=lambda p: (-result.recorded[p].requests, p))


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _triggers(c: Counters) -> str:
    return ", ".join(f"{t} {c.invocations[t]:,}" for t in _TRIGGERS if c.invocations.get(t)) or "none"


def _summary_rows(result: WhatIfResult) -> list[list[str]]:
    recorded = _sum(result.recorded.values())
    rows = [["log (recorded)", f"{recorded.requests:,}", _pct(recorded.hit_ratio), "-", "-", "-"]]
    for label in result.labels:
        c = totals(result, label)
        rows.append([label, f"{c.requests:,}", _pct(c.hit_ratio), f"{c.origin_requests:,}", _bytes(c.origin_bytes),
                     _triggers(c)])
    return rows


def _pop_rows(result: WhatIfResult) -> list[list[str]]:
    pops = {label: per_pop(result, label) for label in result.labels}
    rows = []
    for pop in _pops(result):
        row = [pop, f"{result.recorded[pop].requests:,}", _pct(result.recorded[pop].hit_ratio)]
        for label in result.labels:
            c = pops[label].get(pop, Counters())
            row += [_pct(c.hit_ratio), f"{c.origin_requests:,}", _bytes(c.origin_bytes)]
        rows.append(row)
    return rows


def _pop_header(result: WhatIfResult) -> list[str]:
    head = ["POP", "requests", "log hit ratio"]
    for label in result.labels:
        head += [f"{label} hit ratio", f"{label} origin requests", f"{label} origin bytes"]
    return head


def _pattern_rows(result: WhatIfResult, label: str) -> list[list[str]]:
    return [[f"`{pattern}`", f"{c.requests:,}", _pct(c.hit_ratio), f"{c.passes:,}", f"{c.origin_requests:,}",
             _bytes(c.origin_bytes), _triggers(c)]
            for pattern, c in sorted(per_pattern(result, label).items(), key=lambda kv: -kv[1].requests)]


_SUMMARY_HEAD = ["distribution", "requests", "hit ratio", "origin requests", "origin bytes",
                 "Lambda@Edge / CloudFront Functions invocations"]
_PATTERN_HEAD = ["behavior", "requests", "hit ratio", "not cacheable", "origin requests", "origin bytes",
                 "invocations"]


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _intro(result: WhatIfResult, sources: dict[str, str]) -> list[str]:
    lines = [result.stats.summary() + ".",
             f"Simulated in {result.seconds:.1f} s with {result.processes} process{'es' if result.processes > 1 else ''}."]
    lines += [f"- **{label}**: {sources.get(label, label)}" for label in result.labels]
    return lines


def markdown_report(result: WhatIfResult, sources: dict[str, str], chart_file: str | None = None) -> str:
    out = ["# What-if report", "", *_intro(result, sources), ""]
    if chart_file:
        out += [f"![hit ratio per POP]({chart_file})", ""]
    out += ["## Totals", "", _md_table(_SUMMARY_HEAD, _summary_rows(result)), "",
            "## Per POP (one cache per edge location; no regional tier is modelled)", "",
            _md_table(_pop_header(result), _pop_rows(result)), ""]
    for label in result.labels:
        out += [f"## Per behavior: {label}", "", _md_table(_PATTERN_HEAD, _pattern_rows(result, label)), ""]
    out += ["## Assumptions", "", *[f"- {a}" for a in result.assumptions], ""]
    return "\n".join(out)


def chart_svg(result: WhatIfResult, max_pops: int = 12) -> str:
    """Grouped bars: for each POP (busiest first), the log's hit ratio and each distribution's."""
    pops = _pops(result)[:max_pops]
    series = [("log", {p: result.recorded[p] for p in pops})]
    series += [(label, per_pop(result, label)) for label in result.labels]
    bar, gap, top, left, height = 14, 18, 30, 44, 200
    group = bar * len(series) + gap
    width = left + group * max(1, len(pops)) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 60}" '
             f'font-family="sans-serif" font-size="11" role="img" aria-label="hit ratio per POP">',
             f'<text x="{left}" y="16" font-size="13">Cache hit ratio per POP</text>']
    for tick in (0, 25, 50, 75, 100):
        y = top + height - height * tick / 100
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}%</text>')
    for i, pop in enumerate(pops):
        x0 = left + gap / 2 + i * group
        for j, (name, values) in enumerate(series):
            ratio = values.get(pop, Counters()).hit_ratio
            h = height * ratio
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + height - h:.1f}" width="{bar - 2}" '
                         f'height="{h:.1f}" fill="{_COLORS[j % len(_COLORS)]}"><title>{html.escape(pop)} '
                         f'{html.escape(name)}: {ratio * 100:.1f}%</title></rect>')
        parts.append(f'<text x="{x0 + bar * len(series) / 2:.1f}" y="{top + height + 14}" '
                     f'text-anchor="middle">{html.escape(pop)}</text>')
    for j, (name, _) in enumerate(series):
        x = left + j * 130
        parts.append(f'<rect x="{x}" y="{top + height + 30}" width="10" height="10" fill="{_COLORS[j % len(_COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{top + height + 39}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip('`'))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def html_report(result: WhatIfResult, sources: dict[str, str]) -> str:
    intro = "".join(f"<p>{html.escape(line.lstrip('- ').replace('**', ''))}</p>" for line in _intro(result, sources))
    sections = [f"<h2>Per behavior: {html.escape(label)}</h2>" + _html_table(_PATTERN_HEAD, _pattern_rows(result, label))
                for label in result.labels]
    assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in result.assumptions)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>edgelab what-if</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}</style></head><body>"
            f"<h1>What-if report</h1>{intro}{chart_svg(result)}<h2>Totals</h2>"
            f"{_html_table(_SUMMARY_HEAD, _summary_rows(result))}"
            "<h2>Per POP (one cache per edge location; no regional tier is modelled)</h2>"
            f"{_html_table(_pop_header(result), _pop_rows(result))}{''.join(sections)}"
            f"<h2>Assumptions</h2><ul>{assumptions}</ul></body></html>")


def as_json(result: WhatIfResult, sources: dict[str, str]) -> dict[str, Any]:
    return {"log": result.stats.as_json(), "processes": result.processes, "seconds": round(result.seconds, 3),
            "distributions": {label: sources.get(label, label) for label in result.labels},
            "recorded": {pop: c.as_json() for pop, c in sorted(result.recorded.items())},
            "results": {label: {"total": totals(result, label).as_json(),
                                "pops": {pop: {"total": _sum(bp.values()).as_json(),
                                               "behaviors": {pat: c.as_json() for pat, c in bp.items()}}
                                         for pop, bp in sorted(result.results[label].items())}}
                        for label in result.labels},
            "assumptions": result.assumptions}
