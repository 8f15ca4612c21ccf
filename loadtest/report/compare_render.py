"""A comparison as a terminal table, Markdown (a PR comment) or JSON: one renderer per format.

Every renderer is a pure function of the ``loadtest.compare/1`` document
(:func:`loadtest.analysis.compare.compare_runs`) returning ``(filename, text)``, as the run
reports' renderers do; the command decides what is printed and what is written. Reading only
the document means a saved ``compare.json`` renders again the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from loadtest.errors import UsageError
from loadtest.report.markdown import md_code, md_text

CompareRenderer = Callable[[Mapping[str, Any]], tuple[str, str]]
"""Takes the comparison document, returns the file name and its text."""

ERROR_RATE = "error_rate"
ICONS: Mapping[str, str] = {"regressed": "❌", "improved": "✅", "unchanged": "➖"}
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
