"""What every renderer reads: a run's summary, its metadata, its series and spectra.

Built by :func:`loadtest.analysis.summary.report_input` from the run directory alone, so a
report can be rebuilt years later on another machine. Renderers only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadtest.analysis.series import WindowSeries

REPORT_SCHEMA = "loadtest.report/1"


@dataclass
class ReportInput:
    """Attributes:
    summary: ``summary.json`` as built (contract keys: ``metrics``, ``metrics_all``,
        ``steady_state`` {``from_utc``, ``to_utc``, ``excluded_s``, ``from_s``, ``to_s``},
        ``counts``, ``breakdowns``, ``generator``, ``connections``, ``slo``, ``interrupted``,
        ``incomplete`` …).
    run: ``run.json`` (scenario, target, options with secrets redacted, versions, times).
    series: per-bucket values over the whole run, at most ~2,000 buckets (for plots).
    spectra: latency metric → ``[(percentile, value_ms), …]`` over the steady state, for an
        HdrHistogram-style percentile spectrum (x axis ``1 / (1 - percentile / 100)``).
    drift: the soak-drift analysis (:func:`loadtest.analysis.drift.run_drift`), ``None`` for
        runs of fewer than 30 steady buckets or when it was not computed.
    capacity: the step-load analysis (:func:`loadtest.analysis.capacity.run_capacity`),
        ``None`` for runs without steps.
    """

    summary: dict[str, Any]
    run: dict[str, Any]
    series: WindowSeries
    spectra: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    drift: dict[str, Any] | None = None
    capacity: dict[str, Any] | None = None
