"""A ReportInput read from a real run directory, for tests of what a real run renders to.

The reporting side's own builder (``report_input`` in ``loadtest.analysis``) is being written
beside this; until it lands, this reads the interval files with the public reader and shapes
them as :class:`WindowSeries` documents: one bucket per window, steady-state spectra from the
run's totals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadtest.analysis.series import SERIES_STATS, WindowSeries
from loadtest.metrics.catalog import HISTOGRAM_NAMES
from loadtest.metrics.interval_log import read_interval_log
from loadtest.report.model import ReportInput

SPECTRUM_PERCENTILES = tuple(100.0 * (1.0 - 0.5**k) for k in range(12))


def report_input_of(run_dir: Path) -> ReportInput:
    summary = json.loads((run_dir / "summary.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    log = read_interval_log(run_dir)
    windows = log.aggregate.windows()
    span = float(run.get("options", {}).get("window") or 1.0)
    saturated = {float(s) for s in (summary.get("generator") or {}).get("saturated_windows", [])}
    series = WindowSeries(span_s=span, start_s=[w.start_s for w in windows])
    for metric in sorted(HISTOGRAM_NAMES):
        per_window = [w.histograms.get(metric) for w in windows]
        if not any(h is not None and h.count for h in per_window):
            continue
        rows = [h.summary_ms() if h is not None and h.count else None for h in per_window]
        series.percentiles[metric] = {
            stat: [row[stat] if row else None for row in rows] for stat in SERIES_STATS
        }
    keys = sorted({key for w in windows for key in w.counts})
    series.counts = {key: [w.counts.get(key, 0) for w in windows] for key in keys}
    labelled = sorted(
        {(k, label) for w in windows for k, by in w.breakdowns.items() for label in by}
    )
    for key, label in labelled:
        series.breakdowns.setdefault(key, {})[label] = [
            w.breakdowns.get(key, {}).get(label, 0) for w in windows
        ]
    for gauge in sorted({name for w in windows for name in w.gauges}):
        series.gauges[gauge] = [
            w.gauges[gauge].last if gauge in w.gauges else None for w in windows
        ]
    opened = np.asarray(series.counts.get("connections_opened", [0] * len(windows)))
    closed = np.asarray(series.counts.get("connections_closed", [0] * len(windows)))
    series.open_connections = np.cumsum(opened - closed).tolist()
    series.saturated = [w.start_s in saturated for w in windows]
    totals = log.aggregate.totals.histograms
    spectra = {
        metric: [(p, totals[metric].value_at_percentile_ms(p)) for p in SPECTRUM_PERCENTILES]
        for metric in ("connect_ms", "ttfs_ms", "ttfc_ms", "stream_ms", "inter_chunk_ms")
        if metric in totals and totals[metric].count
    }
    return ReportInput(summary=summary, run=run, series=series, spectra=spectra)
