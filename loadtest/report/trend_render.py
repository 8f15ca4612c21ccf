"""A trend across runs as a terminal table, Markdown, JSON or an HTML page: one renderer per
format.

Every renderer is a pure function of the ``loadtest.trend/1`` result
(:func:`loadtest.analysis.trend.trend`) returning ``(filename, text)``, as compare's and the run
reports' renderers do; the command decides what is printed and what is written. The HTML page
shares the run report's head, CSS and badges (:mod:`loadtest.report.html_page`); its figures are
drawn with matplotlib, imported only when a page is rendered.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from loadtest.analysis.trend import format_step, format_value
from loadtest.errors import UsageError
from loadtest.report.html_page import badge, escape, figure_png, figure_tag, head

TrendRenderer = Callable[[Mapping[str, Any]], tuple[str, str]]
"""Takes the trend result, returns the file name and its text."""


def render_trend_table(result: Mapping[str, Any]) -> tuple[str, str]:
    """The terminal view: one line per metric, then one per change point, then the verdict.

    Returns:
        ``("trend.txt", text)``.
    """
    runs = result["runs"]
    lines = [
        f"trend over {len(runs)} runs, {runs[0]['name']} ({runs[0]['started_utc']}) → "
        f"{runs[-1]['name']} ({runs[-1]['started_utc']})",
        "",
    ]
    rows = [("metric", "runs", "newest", "change points", "newest segment")]
    for name, metric in result["metrics"].items():
        steps = metric["change_points"]
        newest = metric["values"][-1] if metric["values"] else None
        state = "regressed" if metric["regressed"] else ("–" if not steps else "ok")
        rows.append((name, str(len(metric["values"])), format_value(name, newest),
                     str(len(steps)), state))  # fmt: skip
    lines += _columns(rows)
    changes = [("metric", "between", "before → after", "step", "p")]
    for name, metric in result["metrics"].items():
        for step in metric["change_points"]:
            changes.append((
                name,
                f"{step['before_run']} | {step['after_run']}",
                f"{format_value(name, step['mean_before'])} → "
                f"{format_value(name, step['mean_after'])}",
                format_step(name, step) + (" worse" if step["worse"] else " better"),
                f"{step['p_value']:.2g}",
            ))  # fmt: skip
    if len(changes) > 1:
        lines += ["", "change points (E-Divisive; runs either side, segment means):", ""]
        lines += _columns(changes)
    lines += ["", result["sentence"]]
    return "trend.txt", "\n".join(lines) + "\n"


def render_trend_markdown(result: Mapping[str, Any]) -> tuple[str, str]:
    """``trend.md``: the verdict first (a CI step summary's preview shows it), then the steps.

    Returns:
        ``("trend.md", text)``.
    """
    icon = "❌" if result["regressed"] else "✅"
    lines = [f"### {icon} {result['verdict'].upper()}: loadtest trend over "
             f"{len(result['runs'])} runs", "", _md(result["sentence"]), ""]  # fmt: skip
    lines += ["| metric | between | before → after | step | p |", "|---|---|--:|--:|--:|"]
    found = False
    for name, metric in result["metrics"].items():
        for step in metric["change_points"]:
            found = True
            lines.append(
                f"| `{name}` | {_md(step['before_run'])} \\| {_md(step['after_run'])} "
                f"| {format_value(name, step['mean_before'])} → "
                f"{format_value(name, step['mean_after'])} "
                f"| {format_step(name, step)} {'worse' if step['worse'] else 'better'} "
                f"| {step['p_value']:.2g} |"
            )
    if not found:
        lines = [*lines[:-2], "No change point in any headline metric."]
    runs = ", ".join(_md(run["name"]) for run in result["runs"])
    return "trend.md", "\n".join([*lines, "", f"<sub>runs, oldest first: {runs}</sub>", ""])


def render_trend_json(result: Mapping[str, Any]) -> tuple[str, str]:
    """``trend.json``: the whole result (``loadtest.trend/1``), indented.

    Returns:
        ``("trend.json", text)``.
    """
    return "trend.json", json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def _md(text: Any) -> str:
    """Run names are user input: keep them from changing the Markdown's structure."""
    flat = " ".join(str(text).split())
    for special in "\\`*_[]|<>":
        flat = flat.replace(special, "\\" + special)
    return flat


def render_trend_html(result: Mapping[str, Any]) -> tuple[str, str]:
    """A self-contained page: the verdict and its sentence, per metric the series with its
    change points and segment means, the change-point table, the runs and the method.

    Returns:
        ``("trend.html", page)``.
    """
    verdict = str(result.get("verdict", "?"))
    kind = "fail" if result.get("regressed") else "pass"
    runs: Sequence[Mapping[str, Any]] = result.get("runs") or ()
    metrics: Mapping[str, Mapping[str, Any]] = result.get("metrics") or {}
    started = _start_by_name(runs)
    parts = [
        *head(f"loadtest trend: {verdict}"),
        f"<h1>{badge(verdict, kind)} loadtest trend over {len(runs)} runs</h1>",
        f"<p><strong>{escape(result.get('sentence', ''))}</strong></p>",
    ]
    if runs:
        parts.append(
            f'<p class="note">Oldest first: <code>{escape(runs[0]["name"])}</code> '
            f"({escape(runs[0]['started_utc'])}) → <code>{escape(runs[-1]['name'])}</code> "
            f"({escape(runs[-1]['started_utc'])}). Lines: change points (red: worse, green: "
            "better); steps: the segment means.</p>"
        )
    for name, metric in metrics.items():
        steps = metric.get("change_points") or []
        state = ("regressed", "fail") if metric.get("regressed") else ("ok", "pass")
        shown = badge(*state) if steps else ""
        parts.append(f'<h2 id="metric-{escape(name)}"><code>{escape(name)}</code> {shown}</h2>')
        values = metric.get("values") or []
        if not values:
            parts.append('<p class="note">Not recorded in any run.</p>')
            continue
        title = f"{name} per run, change points and segment means"
        parts.append(figure_tag(f"trend_{name}", title, series_figure(name, metric, started)))
    parts.append('<h2 id="change-points">Change points</h2>')
    parts.extend(_change_point_table(metrics))
    parts.append("<details><summary>runs, oldest first</summary><table><thead><tr><th>run</th>"
                 "<th>started (UTC)</th><th>path</th></tr></thead><tbody>")  # fmt: skip
    parts += [f"<tr><td><code>{escape(run['name'])}</code></td><td>{escape(run['started_utc'])}"
              f"</td><td><code>{escape(run['path'])}</code></td></tr>" for run in runs]  # fmt: skip
    parts.append("</tbody></table></details>")
    method = result.get("method") or {}
    parts.append(
        f'<p class="note">{escape(method.get("algorithm", "E-Divisive"))}; p &lt; '
        f"{escape(method.get('max_pvalue', '?'))}, windows of {escape(method.get('window_len'))} "
        f"runs; the newest run regresses when its segment is worse by at least "
        f"{escape(method.get('threshold_pct'))} %. Method: docs/analysis.md, "
        "&quot;Trends across runs&quot;.</p>"
    )
    parts.append("</body></html>")
    return "trend.html", "\n".join(parts) + "\n"


def _change_point_table(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    for name, metric in metrics.items():
        for step in metric.get("change_points") or []:
            word, kind = ("worse", "fail") if step["worse"] else ("better", "pass")
            rows.append(
                f"<tr><td><code>{escape(name)}</code></td><td>{escape(step['before_run'])} | "
                f"{escape(step['after_run'])}</td>"
                f"<td class=n>{escape(format_value(name, step['mean_before']))} → "
                f"{escape(format_value(name, step['mean_after']))}</td>"
                f"<td class=n>{escape(format_step(name, step))}</td><td>{badge(word, kind)}</td>"
                f"<td class=n>{step['p_value']:.2g}</td></tr>"
            )
    if not rows:
        return ['<p class="note">No change point in any headline metric.</p>']
    return [
        "<table><thead><tr><th>metric</th><th>between</th><th class=n>before → after</th>"
        "<th class=n>step</th><th></th><th class=n>p</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]


def _start_by_name(runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Run name → start (UTC, to the minute); a name two runs share gets no date (ambiguous)."""
    starts: dict[str, str] = {}
    shared: set[str] = set()
    for run in runs:
        name = str(run.get("name"))
        if name in starts:
            shared.add(name)
        starts[name] = str(run.get("started_utc") or "")[:16].replace("T", " ")
    return {name: start for name, start in starts.items() if name not in shared}


#: Colours of a change point that made the metric worse, or better (the badges' red and green).
WORSE_COLOUR, BETTER_COLOUR = "#c62828", "#2e7d32"
#: At most this many run labels on an x axis; more would overlap.
MAX_RUN_LABELS = 20


def series_figure(name: str, metric: Mapping[str, Any], started: Mapping[str, str]) -> bytes:
    """One metric across runs: its values (x = run, oldest first), every change point as a
    vertical line between the two runs (red: worse, green: better) and each segment's mean as
    a horizontal step.

    Returns:
        The PNG.
    """
    # Imported here: matplotlib costs ~0.5 s to import, which md or json output should not pay.
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator

    rate = name == "error_rate"
    scale = 100.0 if rate else 1.0
    values = scale * np.asarray(metric.get("values") or [], dtype=float)
    names = [str(run) for run in metric.get("runs") or []]
    steps = metric.get("change_points") or []
    figure = Figure(figsize=(9.0, 3.3), layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(f"{name} per run", fontsize=10, loc="left")
    positions = np.arange(values.size)
    ax.plot(positions, values, marker="o", markersize=4, linewidth=1, color="#4c72b0")
    bounds = [0, *(int(step["index"]) for step in steps), values.size]
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            ax.hlines(float(values[start:stop].mean()), start - 0.5, stop - 0.5,
                      colors="#212121", linewidth=2, alpha=0.7)  # fmt: skip
    for step in steps:
        colour, style = (WORSE_COLOUR, "-") if step["worse"] else (BETTER_COLOUR, "--")
        ax.axvline(int(step["index"]) - 0.5, color=colour, linestyle=style, linewidth=1.5)
    shown = positions if values.size <= MAX_RUN_LABELS else np.unique(
        np.linspace(0, values.size - 1, MAX_RUN_LABELS).round().astype(int))  # fmt: skip
    ax.xaxis.set_major_locator(FixedLocator(shown.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    labels = []
    for position in shown:
        run = names[position] if position < len(names) else str(position)
        when = started.get(run, "")
        labels.append(_plain(f"{run}\n{when}" if when else run))
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_xlim(-0.6, values.size - 0.4)
    ax.set_ylabel("%" if rate else "ms")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color="#eeeeee")
    handles = [
        Line2D([], [], color="#4c72b0", marker="o", markersize=4, label="run"),
        Line2D([], [], color="#212121", linewidth=2, alpha=0.7, label="segment mean"),
        Line2D([], [], color=WORSE_COLOUR, label="change point, worse"),
        Line2D([], [], color=BETTER_COLOUR, linestyle="--", label="change point, better"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="best")
    return figure_png(figure)


def _plain(label: str) -> str:
    """A label from the data, safe from matplotlib's mathtext (``$`` starts a formula)."""
    return label.replace("$", r"\$")


TREND_RENDERERS: Mapping[str, TrendRenderer] = MappingProxyType(
    {
        "table": render_trend_table,
        "md": render_trend_markdown,
        "json": render_trend_json,
        "html": render_trend_html,
    }
)
"""``loadtest trend --format`` name → renderer."""


def check_trend_formats(formats: Sequence[str]) -> list[str]:
    """The formats, stripped and without repeats, in the order given.

    Raises:
        UsageError: a format is not in :data:`TREND_RENDERERS`.
    """
    chosen: list[str] = []
    for name in (f.strip() for f in formats):
        if not name:
            continue
        if name not in TREND_RENDERERS:
            raise UsageError(f"unknown format {name!r} (known: {', '.join(TREND_RENDERERS)})")
        if name not in chosen:
            chosen.append(name)
    return chosen
