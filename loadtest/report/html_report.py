"""``report.html``: one self-contained page a person reads at a glance.

Nothing on the page reaches the network: CSS is inline, figures are PNG ``data:`` URIs, there
is no script, font or link, so the file opens the same from a CI artefact store, an e-mail or a
laptop on a plane. Every string that comes from the run (scenario names, target URLs, labels,
check texts) goes through :func:`html.escape`: they are user input.

Section order answers the reader's questions in turn: did it pass (verdicts and banners), what
ran, the numbers, how they moved over time, the tail, whether the generator itself was healthy,
and what each metric means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadtest.metrics.definitions import GENERATOR_DEFINITIONS, LATENCY_DEFINITIONS
from loadtest.report import headline
from loadtest.report.html_page import badge as _badge
from loadtest.report.html_page import escape as _e
from loadtest.report.html_page import figure_tag, head
from loadtest.report.model import ReportInput
from loadtest.report.table import COLUMNS, METRIC_ROWS

if TYPE_CHECKING:
    from loadtest.report.plots import Plot

FILENAME = "report.html"

SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("over_time", "Over time", "Grey: outside the steady state (ramp, warm-up). "
     "Red: buckets in which the load generator was saturated."),
    ("spectra", "Percentile spectra", "Each metric's distribution over the steady state, "
     "HdrHistogram style: the x axis stretches the tail (1 / (1 − p))."),
    ("generator", "Load-generator health", "A saturated generator reports its own queueing as "
     "latency: read the numbers above only where these stay below their thresholds."),
)  # fmt: skip


def render_html(report: ReportInput) -> tuple[str, str]:
    """The report page.

    Args:
        report: the run's summary, metadata, series and spectra.

    Returns:
        ``("report.html", page)``.
    """
    # Imported here: matplotlib costs ~0.5 s to import, which a CLI writing only md, json or
    # junit should not pay.
    from loadtest.report.plots import render_plots

    summary, run = report.summary, report.run
    plots = render_plots(report)
    verdict = headline.overall_verdict(summary)
    scenario = run.get("scenario") or "run"
    parts: list[str] = [
        *head(f"loadtest {scenario}: {verdict}"),
        f"<h1>{_badge(verdict)} loadtest <code>{_e(scenario)}</code></h1>",
        *_banners(summary),
        *_verdicts(summary),
        *_run(run, summary),
        *_percentiles(summary),
        *_drift(report.drift),
        *_capacity(report.capacity, [plot for plot in plots if plot.section == "capacity"]),
    ]
    for section, heading, note in SECTIONS:
        chosen = [plot for plot in plots if plot.section == section]
        if not chosen:
            continue
        parts.append(f'<h2 id="{section}">{_e(heading)}</h2><p class="note">{_e(note)}</p>')
        parts.extend(figure_tag(plot.key, plot.title, plot.png) for plot in chosen)
    parts.extend(_definitions())
    parts.append("</body></html>")
    return FILENAME, "\n".join(parts) + "\n"


def _markdown_inline(text: str) -> str:
    """Escape, then render the definitions' only Markdown: `code` and *emphasis*."""
    escaped = _e(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", escaped)


def _banners(summary: Mapping[str, Any]) -> Iterable[str]:
    for banner in headline.banners(summary):
        yield (
            f'<div class="banner {_e(banner.kind)}"><strong>{_e(banner.title)}</strong>: '
            f"{_e(banner.text)}</div>"
        )


def _verdicts(summary: Mapping[str, Any]) -> Iterable[str]:
    checks = headline.checks(summary)
    yield '<h2 id="verdicts">SLO verdicts</h2>'
    if not checks:
        yield '<p class="note">No check was judged: the run is inconclusive.</p>'
        return
    yield (
        "<table><thead><tr><th>verdict</th><th>check</th><th class=n>value</th>"
        "<th class=n>samples</th><th></th></tr></thead><tbody>"
    )
    for check in checks:
        verdict = str(check.get("verdict", "inconclusive"))
        samples = check.get("samples")
        builtin = "built-in gate" if check.get("builtin") else ""
        reason = check.get("reason") or ""
        yield (
            f"<tr><td>{_badge(verdict)}</td><td><code>{_e(check.get('check', '?'))}</code>"
            f"{'<br><span class=note>' + _e(reason) + '</span>' if reason else ''}</td>"
            f"<td class=n>{_e(headline.format_value(check.get('value')))}</td>"
            f"<td class=n>{_e(headline.format_value(samples))}</td>"
            f"<td class=note>{builtin}</td></tr>"
        )
    yield "</tbody></table>"


def _run(run: Mapping[str, Any], summary: Mapping[str, Any]) -> Iterable[str]:
    yield '<h2 id="run">Run</h2><table><tbody>'
    for label, value in headline.run_facts(run, summary):
        yield f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>"
    yield "</tbody></table>"
    options = run.get("options")
    if options:
        # All options, for the record; run.json already has its secrets redacted.
        shown = json.dumps(options, indent=1, sort_keys=True, default=str)
        yield f"<details><summary>every option</summary><pre>{_e(shown)}</pre></details>"


def _percentiles(summary: Mapping[str, Any]) -> Iterable[str]:
    metrics: Mapping[str, Mapping[str, Any]] = summary.get("metrics") or {}
    keys = headline.table_metrics(summary, [key for key, _ in METRIC_ROWS])
    yield '<h2 id="percentiles">Percentiles (ms)</h2>'
    yield f'<p class="note">{_e(headline.steady_state_text(summary))}</p>'
    if keys:
        header = "".join(f"<th class=n>{_e(label)}</th>" for _, label in COLUMNS)
        yield f"<table><thead><tr><th>metric</th>{header}</tr></thead><tbody>"
        for key in keys:
            cells = "".join(
                f"<td class=n>{_e(headline.format_ms(metrics[key].get(column), column))}</td>"
                for column, _ in COLUMNS
            )
            yield f"<tr><td><code>{_e(key)}</code></td>{cells}</tr>"
        yield "</tbody></table>"
    else:
        yield '<p class="note">No latency recorded.</p>'
    counts = headline.nonzero_counts(summary)
    if counts:
        shown = " · ".join(f"<code>{_e(key)}</code> {value:,}" for key, value in counts)
        yield f"<p>{shown}</p>"
    for label, detail in headline.breakdown_lines(summary):
        yield f"<p><code>{_e(label)}</code>: {_e(detail)}</p>"
    outages = (summary.get("connections") or {}).get("outages") or []
    for outage in outages:
        yield (
            f'<p class="note">connection outage {_e(outage.get("from_utc"))} → '
            f"{_e(outage.get('to_utc'))} ({_e(outage.get('seconds'))} s)</p>"
        )


def _drift(drift: Mapping[str, Any] | None) -> Iterable[str]:
    """Soak drift (runs of 30 steady buckets or more): verdict, sentence, one row per series."""
    if drift is None:
        return
    from loadtest.analysis.drift import drift_rows

    kind = {"drift": "fail", "no drift": "pass"}.get(str(drift.get("verdict")), "inconclusive")
    yield (
        f'<h2 id="drift">Drift</h2><p><span class="verdict {kind}">'
        f"{_e(str(drift.get('verdict', '')).upper())}</span> {_e(drift.get('sentence', ''))}</p>"
    )
    yield (
        f'<p class="note">Per-bucket series over the steady state ({drift.get("windows", 0):,} '
        f"buckets of {drift.get('span_s', 0):g} s): Mann–Kendall with the Hamed–Rao correction, "
        "Theil–Sen slope with its 95 % interval. The generator's memory is the tool's own.</p>"
    )
    yield (
        "<table><thead><tr><th>series</th><th>verdict</th><th class=n>slope</th>"
        "<th class=n>95 % CI</th><th class=n>of median</th><th class=n>p</th></tr></thead><tbody>"
    )
    for label, verdict, slope, interval, pct, p_value in drift_rows(dict(drift)):
        yield (
            f"<tr><td><code>{_e(label)}</code></td><td>{_e(verdict)}</td>"
            f"<td class=n>{_e(slope)}</td><td class=n>{_e(interval)}</td>"
            f"<td class=n>{_e(pct)}</td><td class=n>{_e(p_value)}</td></tr>"
        )
    yield "</tbody></table>"
    generator = drift.get("generator") or {}
    if generator.get("sentence"):
        yield f'<p class="note">{_e(_first_upper(str(generator["sentence"])))}.</p>'


def _capacity(capacity: Mapping[str, Any] | None, plots: Sequence[Plot]) -> Iterable[str]:
    """A step-load run: the knee's sentence, one row per step, the capacity curve."""
    if capacity is None:
        return
    from loadtest.analysis.capacity import capacity_rows

    if not capacity.get("checks"):
        kind, word = "inconclusive", "NO SLO"
    else:
        kind, word = ("pass", "KNEE") if capacity.get("knee") else ("fail", "NO KNEE")
    yield (
        f'<h2 id="capacity">Capacity</h2><p><span class="verdict {kind}">{word}</span> '
        f"{_e(capacity.get('sentence', ''))}</p>"
    )
    yield (
        f'<p class="note">{_e(capacity.get("model", ""))} model, each step held '
        f"{_e(capacity.get('step_time_s'))} s from when its load was reached; percentiles with "
        "95 % block-bootstrap intervals; attainment is the share of the step's streams meeting "
        f"every objective ({_e(', '.join(capacity.get('objectives') or []) or 'none')}), failed "
        "streams against it.</p>"
    )
    rows = capacity_rows(capacity)
    if rows:
        yield "<table><thead><tr>" + "".join(f"<th>{_e(k)}</th>" for k in rows[0]) + "</tr>"
        yield "</thead><tbody>"
        for row in rows:
            yield "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row.values()) + "</tr>"
        yield "</tbody></table>"
    for plot in plots:
        yield figure_tag(plot.key, plot.title, plot.png)


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]  # not str.capitalize: it would lower "MB/h"


def _definitions() -> Iterable[str]:
    yield '<h2 id="definitions">Metric definitions</h2>'
    yield (
        '<p class="note">As in docs/metrics.md, which also explains the statistics '
        "(HdrHistogram, 3 significant digits) and the time windows.</p>"
    )
    yield (
        "<table><thead><tr><th>metric</th><th>from → to</th><th>one sample per</th>"
        "<th>excluded</th></tr></thead><tbody>"
    )
    for definition in LATENCY_DEFINITIONS.values():
        yield (
            f"<tr><td><code>{_e(definition.key)}</code></td>"
            f"<td>{_markdown_inline(definition.from_to)}</td>"
            f"<td>{_markdown_inline(definition.one_sample_per)}</td>"
            f"<td>{_markdown_inline(definition.excluded)}</td></tr>"
        )
    for definition in GENERATOR_DEFINITIONS.values():
        yield (
            f"<tr><td><code>{_e(definition.key)}</code></td>"
            f"<td colspan=3>{_markdown_inline(definition.from_to)}</td></tr>"
        )
    yield "</tbody></table>"
