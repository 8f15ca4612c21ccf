"""A comparison as a terminal table, Markdown (a PR comment), JSON or an HTML page: one renderer
per format.

Every renderer is a pure function of the ``loadtest.compare/1`` document
(:func:`loadtest.analysis.compare.compare_runs`) returning ``(filename, text)``, as the run
reports' renderers do; the command decides what is printed and what is written. Reading only
the document means a saved ``compare.json`` renders again the same way. The HTML page shares the
run report's head, CSS and badges (:mod:`loadtest.report.html_page`); its one figure is drawn
with matplotlib, imported only when a page is rendered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from loadtest.errors import UsageError
from loadtest.report.html_page import badge, escape, figure_tag, head
from loadtest.report.markdown import md_code, md_text

CompareRenderer = Callable[[Mapping[str, Any]], tuple[str, str]]
"""Takes the comparison document, returns the file name and its text."""

ERROR_RATE = "error_rate"
ICONS: Mapping[str, str] = {"regressed": "❌", "improved": "✅", "unchanged": "➖"}
#: A verdict's badge colour in HTML (:data:`loadtest.report.html_page.BADGE_KINDS`).
BADGE_KIND: Mapping[str, str] = {"regressed": "fail", "improved": "pass", "unchanged": "neutral"}
#: Its marker colour in the figure (the badges' red, green and grey).
VERDICT_COLOUR: Mapping[str, str] = {"regressed": "#c62828", "improved": "#2e7d32",
                                     "unchanged": "#616161"}  # fmt: skip
HEADER: tuple[str, ...] = ("metric", "stat", "base", "candidate", "delta", "delta %",
                           "95 % interval of delta", "verdict")  # fmt: skip


def _signed(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:+.2f}{unit}"


def _latency(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3f} %"


def _rate_delta(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.3f} pp"


def _cells(metric: str, stat: str, entry: Mapping[str, Any]) -> list[str]:
    """One row's cells: latencies in ms, the error rate in % and percentage points."""
    if metric == ERROR_RATE:
        value, delta, unit = _rate, _rate_delta, " pp"
        ci = entry.get("ci")
        interval = "-" if ci is None else f"{100 * ci[0]:+.3f} … {100 * ci[1]:+.3f}{unit}"
    else:
        value, delta = _latency, _signed
        ci = entry.get("ci")
        interval = "-" if ci is None else f"{ci[0]:+.2f} … {ci[1]:+.2f}"
    pct = entry.get("delta_pct")
    return [
        metric,
        stat,
        value(entry.get("base")),
        value(entry.get("candidate")),
        delta(entry.get("delta")),
        "-" if pct is None else f"{pct:+.1f} %",
        interval,
        str(entry.get("verdict", "?")),
    ]


def _rows(document: Mapping[str, Any]) -> list[list[str]]:
    return [
        _cells(metric, stat, entry)
        for metric, by_stat in (document.get("metrics") or {}).items()
        for stat, entry in by_stat.items()
    ]


def _several_runs(document: Mapping[str, Any]) -> bool:
    return len(document.get("base") or ()) > 1 or len(document.get("candidate") or ()) > 1


def _spread_text(spread: Mapping[str, Any], rate: bool) -> str:
    """``mean ± sd (CV x %)`` of one side's runs; ``mean (1 run)`` for one."""
    scale, unit = (100.0, " %") if rate else (1.0, "")
    mean = spread.get("mean")
    if mean is None:
        return "-"
    if spread.get("sd") is None:
        return f"{scale * mean:.3f}{unit} (1 run)" if rate else f"{mean:.2f} (1 run)"
    cv = spread.get("cv")
    cv_text = "" if cv is None else f", CV {100 * cv:.1f} %"
    ci = spread.get("ci") or [None, None]
    digits = 3 if rate else 2
    return (f"{scale * mean:.{digits}f} ± {scale * spread['sd']:.{digits}f}{unit}{cv_text}, "
            f"95 % {scale * ci[0]:.{digits}f} … {scale * ci[1]:.{digits}f}")  # fmt: skip


def _spread_rows(document: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for metric, by_stat in (document.get("metrics") or {}).items():
        for stat, entry in by_stat.items():
            runs = entry.get("runs") or {}
            rate = metric == ERROR_RATE
            rows.append([metric, stat,
                         _spread_text(runs.get("base") or {}, rate),
                         _spread_text(runs.get("candidate") or {}, rate),
                         str(entry.get("ci_from") or "-")])  # fmt: skip
    return rows


def verdict_line(document: Mapping[str, Any]) -> str:
    """The one-line decision: what regressed (exit 4) or improved, or that nothing changed."""
    threshold = document.get("threshold_pct")
    regressions: Sequence[str] = document.get("regressions") or ()
    improvements: Sequence[str] = document.get("improvements") or ()
    if regressions:
        text = f"verdict: REGRESSED: {', '.join(regressions)} (exit 4)"
    elif improvements:
        text = f"verdict: improved: {', '.join(improvements)}; nothing regressed"
    else:
        text = (f"verdict: unchanged: no change beyond {threshold:g} % with an interval "
                "excluding 0")  # fmt: skip
    if improvements and regressions:
        text += f"; improved: {', '.join(improvements)}"
    return text


def _aligned(rows: list[list[str]], numeric_from: int, numeric_to: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if numeric_from <= i < numeric_to else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _title(document: Mapping[str, Any]) -> str:
    base, candidate = len(document.get("base") or ()), len(document.get("candidate") or ())
    threshold = document.get("threshold_pct", 0)
    return (
        f"loadtest compare: {base} base run(s) vs {candidate} candidate run(s) · steady state · "
        f"threshold {threshold:g} % · latencies in ms"
    )


def render_compare_table(document: Mapping[str, Any]) -> tuple[str, str]:
    """The terminal table: one line per metric and percentile, then the verdict line.

    Returns:
        ``("compare.txt", text)``.
    """
    lines = [_title(document), ""]
    rows = _rows(document)
    if rows:
        lines += _aligned([list(HEADER), *rows], 2, 7)
    else:
        lines.append("(nothing to compare)")
    if _several_runs(document):
        lines += ["", "run-to-run spread (mean ± sd, CV, 95 % t-interval of the mean):"]
        header = ["metric", "stat", "base runs", "candidate runs", "interval from"]
        lines += _aligned([header, *_spread_rows(document)], 2, 2)
    lines += ["", verdict_line(document)]
    lines += [f"note: {note}" for note in document.get("notes") or ()]
    return "compare.txt", "\n".join(lines) + "\n"


def render_compare_markdown(document: Mapping[str, Any]) -> tuple[str, str]:
    """Markdown for a pull-request comment: the verdict first, then the table and notes.

    Returns:
        ``("compare.md", text)``.
    """
    verdict = str(document.get("verdict", "unchanged"))
    lines = [f"### {ICONS.get(verdict, '➖')} loadtest compare: {md_text(verdict)}", "",
             md_text(verdict_line(document)), ""]  # fmt: skip
    rows = _rows(document)
    if rows:
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|---|---|--:|--:|--:|--:|--:|---|")
        for row in rows:
            icon = ICONS.get(row[7], "")
            cells = [md_code(row[0]), md_text(row[1]), *(md_text(c) for c in row[2:7]),
                     f"{icon} {md_text(row[7])}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    if _several_runs(document):
        lines += ["", "**Run-to-run spread** (mean ± sd, CV, 95 % t-interval of the mean)", "",
                  "| metric | stat | base runs | candidate runs | interval from |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for row in _spread_rows(document):
            lines.append(f"| {md_code(row[0])} | " + " | ".join(md_text(c) for c in row[1:]) + " |")
    notes = document.get("notes") or ()
    if notes:
        lines.append("")
        lines += [f"- {md_text(note)}" for note in notes]
    method = document.get("method") or {}
    base = ", ".join(md_code(p) for p in document.get("base") or ())
    candidate = ", ".join(md_code(p) for p in document.get("candidate") or ())
    lines += ["", f"Base {base}; candidate {candidate}. Steady-state percentiles in ms; "
              f"threshold {document.get('threshold_pct', 0):g} %; 95 % intervals: "
              f"{md_text(method.get('interval', '?'))} ({method.get('resamples', '?')} "
              f"resamples, seed {method.get('seed', '?')}). Method: docs/analysis.md, "
              "\"Comparing runs\"."]  # fmt: skip
    return "compare.md", "\n".join(lines) + "\n"


def _required(metric: str, value: float | None) -> str:
    """The change a verdict needed (``required_change``), in the metric's unit."""
    if value is None:
        return "-"
    return f"±{100 * value:.3f} pp" if metric == ERROR_RATE else f"±{value:.2f}"


def _method_text(document: Mapping[str, Any]) -> str:
    method = document.get("method") or {}
    buckets = method.get("bucket_s") or {}
    sizes = sorted({float(size) for size in buckets.values() if size is not None})
    bucket_text = f", buckets of {' / '.join(f'{s:g}' for s in sizes)} s" if sizes else ""
    return (f"Steady-state percentiles in ms, the error rate in % (deltas in percentage points); "
            f"threshold {document.get('threshold_pct', 0):g} % of the base; 95 % intervals: "
            f"{method.get('interval', '?')} ({method.get('resamples', '?')} resamples, seed "
            f"{method.get('seed', '?')}{bucket_text}). Method: docs/analysis.md, "
            "\"Comparing runs\".")  # fmt: skip


def render_compare_html(document: Mapping[str, Any]) -> tuple[str, str]:
    """A self-contained page: the verdict and the caution first, one table per metric, the
    figure of every delta against its threshold band, the notes and the method.

    Returns:
        ``("compare.html", page)``.
    """
    verdict = str(document.get("verdict", "unchanged"))
    metrics: Mapping[str, Mapping[str, Any]] = document.get("metrics") or {}
    notes = list(document.get("notes") or ())
    cautious = bool((document.get("method") or {}).get("cautious")) and bool(notes)
    several = _several_runs(document)
    parts = [
        *head(f"loadtest compare: {verdict}"),
        f"<h1>{_verdict_badge(verdict)} loadtest compare</h1>",
        f"<p><strong>{escape(verdict_line(document))}</strong></p>",
    ]
    if cautious:
        parts.append(f'<div class="banner caution"><strong>Caution</strong>: '
                     f"{escape(notes.pop(0))}</div>")  # fmt: skip
    parts.append(f'<p class="note">{escape(_title(document))}</p>')
    parts.append(_runs_table(document))
    if not metrics:
        parts.append('<p class="note">Nothing to compare.</p>')
    header = ["stat", "base", "candidate", "delta", "delta %", "95 % CI of delta",
              "required change", "verdict"]  # fmt: skip
    for metric, by_stat in metrics.items():
        unit = ("the error rate in %, deltas in percentage points" if metric == ERROR_RATE
                else "values and deltas in ms")  # fmt: skip
        parts.append(f'<h2 id="metric-{escape(metric)}"><code>{escape(metric)}</code></h2>'
                     f'<p class="note">{unit}</p>')  # fmt: skip
        parts.append(_html_table(header, [
            [escape(stat), *(escape(cell) for cell in _cells(metric, stat, entry)[2:7]),
             escape(_required(metric, entry.get("required_change"))),
             _verdict_badge(entry.get("verdict"))]
            for stat, entry in by_stat.items()
        ], numeric=range(1, 7)))  # fmt: skip
        if several:
            rate = metric == ERROR_RATE
            parts.append('<p class="note">Run-to-run spread (mean ± sd, CV, 95 % t-interval of '
                         "the mean), and which interval the delta's CI is from:</p>")  # fmt: skip
            parts.append(_html_table(["stat", "base runs", "candidate runs", "CI from"], [
                [escape(stat),
                 escape(_spread_text((entry.get("runs") or {}).get("base") or {}, rate)),
                 escape(_spread_text((entry.get("runs") or {}).get("candidate") or {}, rate)),
                 escape(entry.get("ci_from") or "-")]
                for stat, entry in by_stat.items()
            ], numeric=()))  # fmt: skip
    if metrics:
        title = "Delta per metric and stat with its 95 % interval, against the threshold band"
        parts.append('<h2 id="figure">Deltas against the threshold</h2>')
        parts.append(figure_tag(
            "compare_deltas", title, delta_figure(document),
            caption="Candidate − base with its 95 % interval; grey band: ± the threshold "
                    f"({document.get('threshold_pct', 0):g} % of the base); dotted: the change "
                    "the verdict required where it was larger (the interval's full width, when "
                    "a side has a single run). Marker colour: the verdict.",
        ))  # fmt: skip
    if notes:
        parts.append('<h2 id="notes">Notes</h2><ul>')
        parts += [f"<li>{escape(note)}</li>" for note in notes]
        parts.append("</ul>")
    parts.append(f'<p class="note">{escape(_method_text(document))}</p>')
    parts.append("</body></html>")
    return "compare.html", "\n".join(parts) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                numeric: Sequence[int] | range) -> str:  # fmt: skip
    """A table of cells already escaped (or badges); ``numeric`` columns right-aligned."""

    def cell(tag: str, index: int, content: str) -> str:
        return f"<{tag}{' class=n' if index in numeric else ''}>{content}</{tag}>"

    head_cells = "".join(cell("th", i, escape(text)) for i, text in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)  # fmt: skip
    return f"<table><thead><tr>{head_cells}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_badge(verdict: Any) -> str:
    text = str(verdict or "?")
    return badge(text, BADGE_KIND.get(text))


def _runs_table(document: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{side}</th><td>"
        + "<br>".join(f"<code>{escape(path)}</code>" for path in document.get(side) or ())
        + "</td></tr>"
        for side in ("base", "candidate")
    )
    return f"<table><tbody>{rows}</tbody></table>"


def delta_figure(document: Mapping[str, Any]) -> bytes:
    """One panel per metric, one row per stat: the delta with its interval as an error bar
    against 0, the ±threshold band shaded, the larger required change (if any) dotted.

    Returns:
        The PNG.
    """
    # Imported here: matplotlib costs ~0.5 s to import, which md or json output should not pay.
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from loadtest.report.html_page import figure_png

    metrics: Mapping[str, Mapping[str, Any]] = document.get("metrics") or {}
    fraction = float(document.get("threshold_pct") or 0.0) / 100.0
    heights = [0.9 + 0.45 * len(by_stat) for by_stat in metrics.values()]
    figure = Figure(figsize=(9.0, 0.5 + sum(heights)), layout="constrained")
    axes = figure.subplots(len(metrics), 1, squeeze=False,
                           gridspec_kw={"height_ratios": heights})[:, 0]  # fmt: skip
    for ax, (metric, by_stat) in zip(axes, metrics.items(), strict=True):
        scale, unit = (100.0, "percentage points") if metric == ERROR_RATE else (1.0, "ms")
        reach = 0.0
        for row, entry in enumerate(by_stat.values()):
            base = entry.get("base")
            band = scale * fraction * abs(base) if base is not None else 0.0
            required = scale * float(entry.get("required_change") or 0.0)
            ax.fill_betweenx([row - 0.38, row + 0.38], -band, band, color="#9e9e9e",
                             alpha=0.3, linewidth=0)  # fmt: skip
            if required > band * 1.001 + 1e-12:  # not a difference of rounding (1 µs)
                ax.vlines([-required, required], row - 0.38, row + 0.38, colors="#616161",
                          linestyles=":", linewidth=1.2)  # fmt: skip
            reach = max(reach, band, required)
            delta, ci = entry.get("delta"), entry.get("ci")
            if delta is None:
                ax.annotate("no value", (0, row), ha="center", va="center", color="#555555")
                continue
            delta = scale * float(delta)
            errors = None
            if ci is not None:
                low, high = scale * float(ci[0]), scale * float(ci[1])
                errors = [[max(0.0, delta - low)], [max(0.0, high - delta)]]
                reach = max(reach, abs(low), abs(high))
            colour = VERDICT_COLOUR.get(str(entry.get("verdict")), "#616161")
            ax.errorbar([delta], [row], xerr=errors, fmt="o", color=colour, capsize=4,
                        markersize=6, linewidth=1.5)  # fmt: skip
            reach = max(reach, abs(delta))
        ax.axvline(0.0, color="#212121", linewidth=0.8)
        ax.set_yticks(range(len(by_stat)), labels=list(by_stat))
        ax.set_ylim(len(by_stat) - 0.5, -0.5)  # the first stat on top, as in the table
        ax.set_xlim(-1.15 * reach if reach else -1.0, 1.15 * reach if reach else 1.0)
        ax.set_title(metric, loc="left", fontsize=10)
        ax.set_xlabel(f"candidate − base ({unit})", fontsize=9)
        ax.grid(axis="x", color="#eeeeee")
    handles = [
        Patch(color="#9e9e9e", alpha=0.3, label=f"± threshold ({100 * fraction:g} % of base)"),
        Line2D([], [], color="#616161", linestyle=":", label="required change"),
        *(Line2D([], [], color=colour, marker="o", linestyle="", label=verdict)
          for verdict, colour in VERDICT_COLOUR.items()),
    ]  # fmt: skip
    figure.legend(handles=handles, loc="outside upper right", ncols=len(handles), fontsize=8,
                  frameon=False)  # fmt: skip
    return figure_png(figure)


def render_compare_json(document: Mapping[str, Any]) -> tuple[str, str]:
    """The document itself (``loadtest.compare/1``), indented.

    Returns:
        ``("compare.json", text)``.
    """
    return "compare.json", json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


COMPARE_RENDERERS: Mapping[str, CompareRenderer] = MappingProxyType(
    {
        "table": render_compare_table,
        "md": render_compare_markdown,
        "json": render_compare_json,
        "html": render_compare_html,
    }
)
"""``loadtest compare --format`` name → renderer."""


def check_compare_formats(formats: Sequence[str]) -> list[str]:
    """The formats, stripped and without repeats, in the order given.

    Raises:
        UsageError: a format is not in :data:`COMPARE_RENDERERS`.
    """
    chosen: list[str] = []
    for name in (f.strip() for f in formats):
        if not name:
            continue
        if name not in COMPARE_RENDERERS:
            known = ", ".join(COMPARE_RENDERERS)
            raise UsageError(f"unknown compare format {name!r} (known: {known})")
        if name not in chosen:
            chosen.append(name)
    return chosen
