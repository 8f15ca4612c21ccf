"""``summary.json`` from the run directory alone: one pure function, rebuilt identically.

The running side writes raw files only (``run.json``, the interval log and counters, stream
rows, events); :func:`build_summary` turns them into the contract's summary, and
:func:`report_input` into what every report renders. Nothing here depends on the machine or
the moment it runs, so ``loadtest report`` years later gives the same bytes.

Steady state: the headline ``metrics`` leave out the ramp (until Locust reported spawning
complete and the ramp's users had each made their first connection attempt) and ``--warmup``
after it; ``metrics_all`` keeps the whole run; ``steady_state``
names the span. Counts always cover the whole run (a CI job asking "did anything fail?"
means the whole run).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtest.analysis.gate import builtin_checks, slo_section
from loadtest.analysis.run_reader import RunRead, read_run
from loadtest.analysis.series import WindowSeries
from loadtest.metrics.aggregate import totals_summary
from loadtest.metrics.catalog import METRICS
from loadtest.metrics.generator_health import (
    CPU_SATURATION_SHARE,
    GC_PAUSE_SATURATION_MS,
    LOOP_LAG_SATURATION_P99_MS,
)
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.report.model import ReportInput
from loadtest.rundir import read_json
from loadtest.utc import utc_micros

SUMMARY_SCHEMA = "loadtest.summary/1"
#: Percentiles of a latency spectrum: 0 %, then ten points per decade of 1 / (1 − p) up to
#: 99.999 %, then the maximum (as HdrHistogram's plotter draws them).
SPECTRUM_PERCENTILES: tuple[float, ...] = (
    *(round(100.0 * (1.0 - 10.0 ** (-k / 10.0)), 6) for k in range(51)),
    100.0,
)


class RunFacts:
    """What ``run.json`` says about the run's timing and how it ended."""

    def __init__(self, run: Mapping[str, Any]) -> None:
        load = run.get("load") or {}
        options = run.get("options") or {}
        self.window_s = float(load.get("window_s") or options.get("window") or 1.0)
        # Runs written before ``load`` existed: run.json's own start and end, to the second.
        self.started_s: float | None = _number(load.get("started_s")) or _epoch(
            run.get("started_utc")
        )
        self.stopped_s: float | None = _number(load.get("stopped_s")) or _epoch(
            run.get("ended_utc")
        )
        self.spawned_s: float | None = _number(load.get("spawning_complete_s"))
        #: When the ramp was done: spawning complete and every ramp user's first connection
        #: attempt, the later of the two as the run wrote it (``loadtest/users/ramp.py``);
        #: runs written before this key existed, or that never got there: spawning complete.
        self.ramp_done_s: float | None = _number(load.get("ramp_connected_s")) or self.spawned_s
        self.warmup_s = float(load.get("warmup_s") or 0.0)
        self.outcome: Mapping[str, Any] = run.get("outcome") or {}


def _epoch(utc: Any) -> float | None:
    if not isinstance(utc, str):
        return None
    try:
        return calendar.timegm(time.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_run_dir(
    run_dir: Path, *, warmup_s: float | None = None, spans: tuple[float, ...] = ()
) -> tuple[dict[str, Any], RunFacts, RunRead]:
    """``run.json``, its facts, and one pass over the interval files."""
    run = read_json(Path(run_dir) / "run.json")
    facts = RunFacts(run)
    if warmup_s is not None:
        facts.warmup_s = warmup_s
    started = facts.started_s if facts.started_s is not None else 0.0
    stopped = facts.stopped_s if facts.stopped_s is not None else float("inf")
    steady_from = (facts.ramp_done_s if facts.ramp_done_s is not None else started) + facts.warmup_s
    read = read_run(
        Path(run_dir),
        window_s=facts.window_s,
        steady_from_s=steady_from,
        steady_to_s=stopped,
        spans=spans,
        duration_s=(stopped - started) if facts.stopped_s is not None else None,
    )
    return run, facts, read


def build_summary(
    run_dir: Path,
    *,
    warmup_s: float | None = None,
    extra_checks: list[dict[str, Any]] | None = None,
    read: tuple[dict[str, Any], RunFacts, RunRead] | None = None,
) -> dict[str, Any]:
    """The contract's ``summary.json`` for a run directory.

    Args:
        run_dir: the run directory.
        warmup_s: overrides the run's ``--warmup`` (seconds after the ramp left out).
        extra_checks: evaluated SLO checks to judge beside the built-in gate.
        read: a :func:`read_run_dir` result to reuse (one pass serves summary and report).

    Returns:
        The summary (see ``docs/metrics.md``).

    Raises:
        UsageError: not a run directory, or its files are unreadable.
    """
    _run, facts, data = read if read is not None else read_run_dir(run_dir, warmup_s=warmup_s)
    whole, steady = totals_summary(data.whole), totals_summary(data.steady)
    started = facts.started_s if facts.started_s is not None else (data.first_start_s or 0.0)
    stopped = facts.stopped_s if facts.stopped_s is not None else (data.last_end_s or started)
    outcome = facts.outcome
    summary: dict[str, Any] = {
        "schema": SUMMARY_SCHEMA,
        "duration_s": round(stopped - started, 3),
        "metrics": steady["metrics"],
        "counts": whole["counts"],
        "breakdowns": whole["breakdowns"],
        "out_of_range": whole["out_of_range"],
        "steady_state": _steady_state(data, started, stopped) | {"counts": steady["counts"]},
        "metrics_all": whole["metrics"],
        "generator": _generator(data),
        "connections": _connections(Path(run_dir), facts.window_s),
        "interrupted": bool(outcome.get("interrupted_by")),
        "interrupted_by": outcome.get("interrupted_by"),
        "incomplete": outcome.get("incomplete"),
        "stopped": outcome.get("stopped"),
        "aborted": outcome.get("aborted"),
    }
    rate_limit = rate_limit_section(Path(run_dir))
    if rate_limit is not None:  # the rate-limit probe's runs only
        summary["rate_limit"] = rate_limit
    summary["slo"] = slo_section(builtin_checks(summary) + list(extra_checks or []))
    return summary


def _steady_state(data: RunRead, started: float, stopped: float) -> dict[str, Any]:
    from_s = min(max(data.steady_from_s, started), stopped)
    to_s = max(min(data.steady_to_s, stopped), from_s)
    return {
        "from_utc": utc_micros(from_s),
        "to_utc": utc_micros(to_s),
        "from_s": round(from_s, 6),
        "to_s": round(to_s, 6),
        "excluded_s": round((from_s - started) + (stopped - to_s), 3),
    }


def _generator(data: RunRead) -> dict[str, Any]:
    gauges = data.whole.gauges
    empty = LatencyHistogram()
    return {
        "saturated": bool(data.saturated_windows),
        "saturated_windows": data.saturated_windows,
        "cpu_share_max": round(gauges["cpu_share"].last, 3) if "cpu_share" in gauges else None,
        "rss_max_mb": round(gauges["rss_mb"].max, 1) if "rss_mb" in gauges else None,
        "loop_lag_ms": data.whole.histograms.get("loop_lag_ms", empty).summary_ms(),
        "gc_pause_ms": data.whole.histograms.get("gc_pause_ms", empty).summary_ms(),
        "thresholds": {
            "cpu_share": CPU_SATURATION_SHARE,
            "loop_lag_p99_ms": LOOP_LAG_SATURATION_P99_MS,
            "gc_pause_ms": GC_PAUSE_SATURATION_MS,
        },
    }


def _connections(run_dir: Path, window_s: float) -> dict[str, Any]:
    from loadtest.analysis.connections import connections_summary  # pandas

    return connections_summary(run_dir, window_s)


def spectra(data: RunRead) -> dict[str, list[tuple[float, float]]]:
    """Steady-state percentile spectrum of every latency metric with samples."""
    found = {}
    for metric in METRICS:
        histogram = data.steady.histograms.get(metric)
        if histogram is not None and histogram.count:
            values = histogram.values_at_percentiles_ms(SPECTRUM_PERCENTILES)
            found[metric] = list(zip(SPECTRUM_PERCENTILES, values, strict=True))
    return found


def rate_limit_section(run_dir: Path) -> dict[str, Any] | None:
    """Where the server started refusing, for a run of the rate-limit probe: ``first_refusal``
    (the lowest step with a refusal, or ``None``) and every step; ``None`` for other runs."""
    from loadtest.analysis.ratelimit import first_refusal, rate_steps, read_rate_step_events

    steps = rate_steps(read_rate_step_events(run_dir))
    if not steps:
        return None
    return {"first_refusal": first_refusal(steps), "steps": steps}


def report_input(
    summary: dict[str, Any], run: dict[str, Any], data: RunRead
) -> ReportInput:
    """What every renderer reads, from one pass over the run directory."""
    series: WindowSeries = data.series[data.plot_span_s]
    return ReportInput(summary=summary, run=run, series=series, spectra=spectra(data))
