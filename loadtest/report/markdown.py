"""``report.md``: the run's decision as a pull-request comment or a CI step summary.

The first line is the verdict, so a notification preview or a collapsed comment shows it; then
the banners, the checks, the steady-state percentiles, the counts and one line of metadata. No
images: a step summary cannot hold a self-contained one, and the HTML report has them.
Strings from the run are escaped: GitHub renders Markdown and some HTML, and a scenario named
``<script>`` or a label with a ``|`` must not change the comment's structure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from loadtest.report import headline
from loadtest.report.model import ReportInput
from loadtest.report.table import COLUMNS, METRIC_ROWS

FILENAME = "report.md"

ICONS: Mapping[str, str] = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def render_markdown(report: ReportInput) -> tuple[str, str]:
    """The Markdown report.

    Args:
        report: the run's summary, metadata and drift (series and spectra are not used).

    Returns:
        ``("report.md", text)``.
    """
    summary, run = report.summary, report.run
    verdict = headline.overall_verdict(summary)
    scenario = run.get("scenario") or "run"
    target = run.get("target")
    against = f" against {md_code(target)}" if target else ""
    checks = headline.checks(summary)
    failed = sum(1 for check in checks if check.get("verdict") != "pass")
    tally = f" ({failed} of {len(checks)} checks not passed)" if failed else ""
    lines = [
        f"### {ICONS.get(verdict, '⚠️')} {verdict.upper()}: loadtest {md_code(scenario)}"
        f"{against}{tally}",
        "",
    ]
    for banner in headline.banners(summary):
        lines.append(f"> ⚠️ **{md_text(banner.title)}**: {md_text(banner.text)}")
        lines.append(">")
    if lines[-1] == ">":
        lines[-1] = ""
    if checks:
        lines += ["| | check | value | samples |", "|---|---|--:|--:|"]
        for check in checks:
            check_verdict = str(check.get("verdict", "inconclusive"))
            builtin = " (built-in)" if check.get("builtin") else ""
            lines.append(
                f"| {ICONS.get(check_verdict, '⚠️')} {md_text(check_verdict)} "
                f"| {md_code(check.get('check', '?'))}{builtin} "
                f"| {md_text(headline.format_value(check.get('value')))} "
                f"| {md_text(headline.format_value(check.get('samples')))} |"
            )
    else:
        lines.append("No check was judged.")
    lines += ["", f"**Percentiles (ms).** {md_text(headline.steady_state_text(summary))}", ""]
    lines += _percentile_table(summary)
    if report.drift is not None:
        lines += ["", *_drift_section(report.drift)]
    if report.capacity is not None:
        lines += ["", *_capacity_section(report.capacity)]
    counts = headline.nonzero_counts(summary)
    if counts:
        lines += ["", " · ".join(f"{md_code(key)} {value:,}" for key, value in counts)]
    for label, detail in headline.breakdown_lines(summary):
        lines += ["", f"{md_code(label)}: {md_text(detail)}"]
    facts = dict(headline.run_facts(run, summary))
    meta = [
        facts.get("target"),
        f"{facts['start (UTC)']} → {facts.get('end (UTC)', '?')}"
        if "start (UTC)" in facts
        else None,
        facts.get("duration"),
        facts.get("load"),
        f"workers {facts['workers']}" if "workers" in facts else None,
        facts.get("versions"),
    ]
    lines += ["", "<sub>" + md_text(" · ".join(item for item in meta if item)) + "</sub>", ""]
    return FILENAME, "\n".join(lines)


def _percentile_table(summary: Mapping[str, Any]) -> list[str]:
    metrics: Mapping[str, Mapping[str, Any]] = summary.get("metrics") or {}
    keys = headline.table_metrics(summary, [key for key, _ in METRIC_ROWS])
    if not keys:
        return ["No latency recorded."]
    lines = [
        "| metric | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---|" + "--:|" * len(COLUMNS),
    ]
    for key in keys:
        cells = " | ".join(headline.format_ms(metrics[key].get(c), c) for c, _ in COLUMNS)
        lines.append(f"| {md_code(key)} | {cells} |")
    return lines


def _capacity_section(capacity: Mapping[str, Any]) -> list[str]:
    """The knee's sentence and one row per step."""
    from loadtest.analysis.capacity import capacity_rows

    lines = [
        f"**Capacity** ({md_text(str(capacity.get('model', '')))} model, steps of "
        f"{md_text(str(capacity.get('step_time_s')))} s). {md_text(capacity.get('sentence', ''))}",
        "",
    ]
    rows = capacity_rows(capacity)
    if rows:
        lines.append("| " + " | ".join(md_text(k) for k in rows[0]) + " |")
        lines.append("|---" * len(rows[0]) + "|")
        lines += ["| " + " | ".join(md_text(v) for v in row.values()) + " |" for row in rows]
    return lines


def _drift_section(drift: Mapping[str, Any]) -> list[str]:
    """The soak-drift verdict, its sentence, one row per series, the generator's own line."""
    from loadtest.analysis.drift import drift_rows

    span = f"{drift.get('windows', 0):,} buckets of {drift.get('span_s', 0):g} s"
    lines = [
        f"**Drift** ({md_text(span)} of the steady state). {md_text(drift.get('sentence', ''))}",
        "",
        "| series | verdict | slope | 95 % CI | of median | p |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in drift_rows(dict(drift)):
        lines.append("| " + " | ".join(md_text(cell) for cell in row) + " |")
    generator = drift.get("generator") or {}
    if generator.get("sentence"):
        lines += ["", md_text(_first_upper(str(generator["sentence"])) + ".")]
    return lines


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]  # not str.capitalize: it would lower "MB/h"


def md_text(value: Any) -> str:
    """Plain text from the run, inert in GitHub Markdown: HTML escaped, Markdown punctuation
    backslash-escaped, newlines folded (a newline would end a table row)."""
    flat = " ".join(str(value).split())
    return _SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def md_code(value: Any) -> str:
    """A name as inline code; backticks inside are impossible to escape there, so a value
    holding one is shown as escaped text instead. ``|`` is escaped even in code, as GitHub
    splits table cells before it parses code spans."""
    flat = " ".join(str(value).split())
    if "`" in flat:
        return md_text(flat)
    piped = flat.replace("|", "\\|")
    return f"`{piped}`"
