"""Is the candidate slower than the baseline? ``loadtest compare``'s statistics, read-only.

Run-to-run spread of a p95 can be ~10× what a bootstrap over one run's *requests* suggests
(``../shared/FINDINGS.md``): requests of one run are not independent, they share the minute in
which the target was slow. So intervals here come from resampling **whole time windows** (a
block bootstrap), and, with several runs per side, from the spread **between runs**; the wider
of the two is used. The method is written down once, in ``docs/analysis.md`` ("Comparing
runs"); this module is its implementation:

1. Each run's point values are its ``summary.json`` steady-state percentiles (rebuilt with
   :func:`~loadtest.analysis.summary.build_summary`, never written, when the file is missing
   or predates ``steady_state.from_s``).
2. Its steady span is cut into buckets of :func:`bucket_span` seconds (30 s when that gives
   :data:`MIN_BUCKETS` to :data:`MAX_BUCKETS` of them, else shorter or longer), and each
   bucket's **histogram** is read from ``intervals.hlog`` (:func:`read_bucket_histograms`),
   kept as its non-zero counters only.
3. A resample draws as many buckets as the run has, with replacement, adds their histograms
   and reads the percentile off the sum with HdrHistogram's definition, so every resampled
   percentile is exact, never an average of bucket percentiles.
4. The delta's interval is the 2.5th…97.5th percentile of candidate − base over the resamples
   (each side the mean over its runs); with ≥ 2 runs on a side also Welch's t-interval of the
   run-level values; the wider wins.
5. A verdict needs the interval to exclude 0 *and* the delta to pass the threshold; with a
   single run on either side, also to exceed the interval's full width (:func:`verdict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.analysis.buckets import (
    CONFIDENCE,
    MIN_BUCKETS,
    BucketHistograms,
    bootstrap_percentiles_ms,
    bucket_span,
    percentile_interval,
    pooled_percentiles_ms,
    read_bucket_histograms,
)
from loadtest.analysis.intervals import (
    proportion_difference_interval,
    spread,
    welch_interval,
    wider,
)
from loadtest.analysis.summary import RunFacts, build_summary
from loadtest.errors import UsageError
from loadtest.metrics.catalog import METRICS
from loadtest.metrics.histogram import PERCENTILES
from loadtest.rundir import read_json, read_summary

COMPARE_SCHEMA = "loadtest.compare/1"
#: Latency metrics compared by default, each only when every run recorded it in its steady state.
DEFAULT_METRICS: tuple[str, ...] = ("ttfc_ms", "ttfs_ms", "stream_ms", "inter_chunk_ms",
                                    "connect_ms")  # fmt: skip
DEFAULT_STATS: tuple[str, ...] = ("p50", "p95", "p99")
ERROR_RATE = "error_rate"
DEFAULT_THRESHOLD_PCT = 5.0
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20_240_611
EXIT_REGRESSION = 4
INTERVAL_METHOD = (
    "block bootstrap over time windows; with at least 2 runs on a side also Welch's t-interval "
    "of the run values; the wider"
)
VERDICTS: tuple[str, ...] = ("improved", "unchanged", "regressed")


# -- interval and verdict arithmetic -------------------------------------------------------


def required_change(
    base: float, ci: tuple[float, float] | None, threshold_pct: float, *, cautious: bool
) -> float:
    """How far the delta must go (in the metric's unit) before it counts as a change:
    ``threshold_pct`` of the base value; when ``cautious``, at least the interval's full width
    (twice its half-width) too."""
    margin = threshold_pct / 100 * abs(base)
    if cautious and ci is not None:
        margin = max(margin, ci[1] - ci[0])
    return margin


def verdict(
    delta: float,
    base: float,
    ci: tuple[float, float] | None,
    threshold_pct: float,
    *,
    cautious: bool,
) -> str:
    """``regressed``, ``improved`` or ``unchanged``; higher is worse (latency, error rate).

    ``regressed``: the interval lies wholly above 0 and ``delta`` exceeds
    :func:`required_change`; ``improved``: the mirror image. Anything else, and a missing
    interval, is ``unchanged``.
    """
    if ci is None:
        return "unchanged"
    margin = required_change(base, ci, threshold_pct, cautious=cautious)
    if ci[0] > 0 and delta > margin:
        return "regressed"
    if ci[1] < 0 and -delta > margin:
        return "improved"
    return "unchanged"


# -- the comparison ------------------------------------------------------------------------


@dataclass
class _Run:
    """One run directory, as the comparison reads it."""

    path: Path
    summary: dict[str, Any]
    window_s: float
    from_s: float
    to_s: float
    bucket_s: float = 0.0
    histograms: dict[str, BucketHistograms] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.path)

    def samples(self, metric: str) -> int:
        return int(((self.summary.get("metrics") or {}).get(metric) or {}).get("count") or 0)

    def value(self, metric: str, stat: str) -> float:
        return float(self.summary["metrics"][metric][stat])


def _open_run(path: Path, notes: list[str]) -> _Run:
    """A run directory's summary (read, or rebuilt in memory) and steady span.

    Raises:
        UsageError: not a run directory.
    """
    path = Path(path)
    if not (path / "run.json").is_file():
        raise UsageError(f"{path}: not a run directory (no run.json)")
    window_s = RunFacts(read_json(path / "run.json")).window_s
    summary: dict[str, Any] | None = None
    if (path / "summary.json").is_file():
        summary = read_summary(path)
        steady = summary.get("steady_state") or {}
        if steady.get("from_s") is None or steady.get("to_s") is None:
            notes.append(f"{path}: summary.json predates steady_state.from_s; rebuilt in memory")
            summary = None
    if summary is None:
        summary = build_summary(path)
    steady = summary["steady_state"]
    return _Run(path, summary, window_s, float(steady["from_s"]), float(steady["to_s"]))


def _choose_metrics(
    runs: Sequence[_Run], asked: Sequence[str] | None, notes: list[str]
) -> tuple[list[str], bool]:
    """The latency metrics to compare, and whether to compare the error rate.

    Raises:
        UsageError: an asked metric is unknown or has no steady-state sample in some run.
    """
    if asked is None:
        chosen = []
        for metric in DEFAULT_METRICS:
            missing = [run.label for run in runs if not run.samples(metric)]
            if not missing:
                chosen.append(metric)
            elif len(missing) < len(runs):
                notes.append(f"{metric}: not compared (no steady-state samples in "
                             f"{', '.join(missing)})")  # fmt: skip
        return chosen, True
    chosen = []
    for metric in asked:
        if metric == ERROR_RATE:
            continue
        if metric not in METRICS:
            known = ", ".join((*METRICS, ERROR_RATE))
            raise UsageError(f"unknown metric {metric!r} (known: {known})")
        for run in runs:
            if not run.samples(metric):
                raise UsageError(f"{metric}: no samples in the steady state of {run.label}")
        if metric not in chosen:
            chosen.append(metric)
    return chosen, ERROR_RATE in asked


def _seed(seed: int, side: int, run: int, metric: str) -> np.random.Generator:
    """One generator per (side, run, metric), so adding a metric or a run changes no draw of
    the others."""
    return np.random.default_rng([seed, side, run, METRICS.index(metric)])


def compare_runs(
    base: Sequence[Path],
    candidate: Sequence[Path],
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    metrics: Sequence[str] | None = None,
    stats: Sequence[str] = DEFAULT_STATS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Compare candidate runs with base runs, per metric and percentile.

    Args:
        base: the baseline's run directories (one or more).
        candidate: the candidate's run directories (one or more).
        threshold_pct: the smallest relative change (of the base value) that counts.
        metrics: latency metrics (and/or ``error_rate``) to compare; default
            :data:`DEFAULT_METRICS` present in every run, and ``error_rate``.
        stats: percentile fields (``p50`` … ``p999``).
        resamples: bootstrap resamples per run.
        seed: the bootstrap's seed (the same inputs give the same document).

    Returns:
        The ``loadtest.compare/1`` document (see ``docs/analysis.md``): ``schema``, ``base``,
        ``candidate``, ``threshold_pct``, ``metrics`` (metric → stat → ``{base, candidate,
        delta, delta_pct, ci, verdict, …}``), ``verdict``, ``regressions``, ``improvements``,
        ``notes``, ``method``.

    Raises:
        UsageError: no run on a side, a path that is not a run directory, an unknown metric or
            stat, a metric some run never recorded, or a negative threshold.
    """
    if not base or not candidate:
        raise UsageError("compare needs at least one base run and one candidate run")
    if threshold_pct < 0 or not math.isfinite(threshold_pct):
        raise UsageError(f"threshold must be a percentage >= 0, not {threshold_pct}")
    if resamples < 1:
        raise UsageError(f"resamples must be >= 1, not {resamples}")
    for stat in stats:
        if stat not in PERCENTILES:
            raise UsageError(f"unknown stat {stat!r} (known: {', '.join(PERCENTILES)})")
    notes: list[str] = []
    sides = {"base": [_open_run(Path(p), notes) for p in base],
             "candidate": [_open_run(Path(p), notes) for p in candidate]}  # fmt: skip
    every_run = sides["base"] + sides["candidate"]
    latency, with_error_rate = _choose_metrics(every_run, metrics, notes)
    cautious = min(len(sides["base"]), len(sides["candidate"])) < 2
    if cautious:
        notes.insert(0, _caution(len(sides["base"]), len(sides["candidate"])))
    for run in every_run:
        steady_s = max(0.0, run.to_s - run.from_s)
        run.bucket_s = bucket_span(steady_s, run.window_s)
        run.histograms, skipped = read_bucket_histograms(
            run.path, latency, from_s=run.from_s, to_s=run.to_s, bucket_s=run.bucket_s
        )
        buckets = max(1, math.floor(steady_s / run.bucket_s + 1e-9))
        if buckets < MIN_BUCKETS:
            notes.append(f"{run.label}: only {buckets} window(s) of {run.bucket_s:g} s in the "
                         "steady state: its resampling interval is rough")  # fmt: skip
        if skipped:
            notes.append(f"{run.label}: {skipped} damaged interval line(s) skipped")
        if (run.summary.get("generator") or {}).get("saturated"):
            notes.append(f"{run.label}: the load generator was saturated; its latencies "
                         "include the generator's own queueing")  # fmt: skip
    compared: dict[str, dict[str, Any]] = {}
    for metric in latency:
        compared[metric] = _compare_latency(
            metric, sides, stats, threshold_pct, cautious, resamples, seed, notes
        )
    if with_error_rate:
        compared[ERROR_RATE] = {"value": _compare_error_rate(sides, threshold_pct, cautious)}
    regressions = [f"{m}.{s}" for m, by in compared.items() for s, e in by.items()
                   if e["verdict"] == "regressed"]  # fmt: skip
    improvements = [f"{m}.{s}" for m, by in compared.items() for s, e in by.items()
                    if e["verdict"] == "improved"]  # fmt: skip
    overall = "regressed" if regressions else "improved" if improvements else "unchanged"
    return {
        "schema": COMPARE_SCHEMA,
        "base": [run.label for run in sides["base"]],
        "candidate": [run.label for run in sides["candidate"]],
        "threshold_pct": threshold_pct,
        "confidence": CONFIDENCE,
        "metrics": compared,
        "verdict": overall,
        "regressions": regressions,
        "improvements": improvements,
        "notes": notes,
        "method": {
            "values": "steady state (summary.json metrics)",
            "interval": INTERVAL_METHOD,
            "cautious": cautious,
            "resamples": resamples,
            "seed": seed,
            "bucket_s": {run.label: run.bucket_s for run in every_run},
        },
    }


def _caution(base_runs: int, candidate_runs: int) -> str:
    if base_runs == candidate_runs == 1:
        lead = "single run per side: run-to-run spread unknown"
    else:
        side = "base" if base_runs == 1 else "candidate"
        lead = (f"{base_runs} base run(s), {candidate_runs} candidate run(s): run-to-run "
                f"spread unknown on the {side} side")  # fmt: skip
    return (f"{lead}, intervals from within-run resampling only; a change counts only beyond "
            "both the threshold and the interval's full width (2× its half-width)")  # fmt: skip


def _compare_latency(
    metric: str,
    sides: Mapping[str, Sequence[_Run]],
    stats: Sequence[str],
    threshold_pct: float,
    cautious: bool,
    resamples: int,
    seed: int,
    notes: list[str],
) -> dict[str, Any]:
    percentiles = [PERCENTILES[stat] for stat in stats]
    side_draws: dict[str, np.ndarray] = {}
    for side_index, side in enumerate(("base", "candidate")):
        per_run = []
        for run_index, run in enumerate(sides[side]):
            highest_us, matrix = run.histograms[metric].dense()
            per_run.append(bootstrap_percentiles_ms(
                highest_us, matrix, percentiles, resamples=resamples,
                rng=_seed(seed, side_index, run_index, metric),
            ))  # fmt: skip
            every_bucket = matrix.sum(axis=0, keepdims=True)
            pooled = pooled_percentiles_ms(highest_us, every_bucket, percentiles)[0]
            _check_summary_agrees(run, metric, stats, pooled, notes)
            del matrix  # one run's dense buckets at a time
        side_draws[side] = np.mean(np.stack(per_run), axis=0)  # NaN in any run stays NaN
    delta_draws = side_draws["candidate"] - side_draws["base"]
    result = {}
    for column, stat in enumerate(stats):
        values = {side: [run.value(metric, stat) for run in sides[side]] for side in sides}
        result[stat] = _entry(
            values, percentile_interval(delta_draws[:, column]), "windows", values,
            threshold_pct, cautious, digits=3,
        )  # fmt: skip
    return result


def _check_summary_agrees(
    run: _Run, metric: str, stats: Sequence[str], pooled: np.ndarray, notes: list[str]
) -> None:
    """Every bucket pooled must give the summary's value (same windows, same definition): a
    summary.json written from other data (stale, another --warmup) would centre the interval
    away from the value, so say so."""
    for stat, value in zip(stats, pooled, strict=True):
        reported = run.value(metric, stat)
        if not math.isfinite(value) or abs(value - reported) > 1e-6 * abs(reported) + 0.0015:
            notes.append(f"{run.label}: summary.json {metric} {stat} {reported:g} ms differs "
                         f"from its interval log ({value:g} ms); rebuild it with loadtest "
                         "report")  # fmt: skip
            return


def _entry(
    values: Mapping[str, Sequence[float]],
    within_ci: tuple[float, float] | None,
    within: str,
    run_values: Mapping[str, Sequence[float]],
    threshold_pct: float,
    cautious: bool,
    *,
    digits: int,
) -> dict[str, Any]:
    """One metric/stat row of the document.

    Args:
        values: per side the values whose mean is the side's value.
        within_ci: the within-run interval of the delta (resampling, or proportions).
        within: its name in ``ci_from``.
        run_values: per side the run-level values (spread and Welch's interval).
        threshold_pct, cautious: as :func:`verdict` takes them.
        digits: decimals to round values to.
    """
    base_value = float(np.mean(values["base"]))
    candidate_value = float(np.mean(values["candidate"]))
    delta = candidate_value - base_value
    several = max(len(run_values["base"]), len(run_values["candidate"])) >= 2
    runs_ci = welch_interval(run_values["base"], run_values["candidate"]) if several else None
    ci, which = wider(within_ci, runs_ci)
    margin = required_change(base_value, ci, threshold_pct, cautious=cautious)

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, digits)

    def interval(pair: tuple[float, float] | None) -> list[float | None] | None:
        return None if pair is None else [rounded(pair[0]), rounded(pair[1])]

    def side_spread(side: str) -> dict[str, Any]:
        found = spread(run_values[side])
        cv = found["cv"]
        return {
            "runs": found["runs"],
            "values": [rounded(v) for v in found["values"]],
            "mean": rounded(found["mean"]),
            "sd": rounded(found["sd"]),
            "cv": None if cv is None else round(cv, 4),
            "ci": interval(found["ci"]),
        }

    return {
        "base": rounded(base_value),
        "candidate": rounded(candidate_value),
        "delta": rounded(delta),
        "delta_pct": round(100 * delta / base_value, 2) if base_value else None,
        "ci": interval(ci),
        "ci_from": (within, "runs")[which] if ci is not None else None,
        f"ci_{within}": interval(within_ci),
        "ci_runs": interval(runs_ci),
        "required_change": rounded(margin),
        "verdict": verdict(delta, base_value, ci, threshold_pct, cautious=cautious),
        "runs": {"base": side_spread("base"), "candidate": side_spread("candidate")},
    }


def _compare_error_rate(
    sides: Mapping[str, Sequence[_Run]], threshold_pct: float, cautious: bool
) -> dict[str, Any]:
    """streams_failed / (streams_completed + streams_failed) over each whole run (as the SLO
    check ``error_rate`` counts it), pooled per side, with Newcombe's interval of the
    difference; with >= 2 runs per side also Welch's interval of the run rates."""
    tallies: dict[str, tuple[int, int]] = {}
    rates: dict[str, list[float]] = {}
    for side, runs in sides.items():
        failed = settled = 0
        rates[side] = []
        for run in runs:
            counts = run.summary.get("counts") or {}
            run_failed = int(counts.get("streams_failed", 0))
            run_settled = run_failed + int(counts.get("streams_completed", 0))
            failed, settled = failed + run_failed, settled + run_settled
            if run_settled:
                rates[side].append(run_failed / run_settled)
        tallies[side] = (failed, settled)
    defined = all(settled for _, settled in tallies.values())
    within_ci = (proportion_difference_interval(tallies["base"], tallies["candidate"])
                 if defined else None)  # fmt: skip
    pooled = {side: [failed / settled if settled else 0.0]
              for side, (failed, settled) in tallies.items()}  # fmt: skip
    # A run without settled streams has no rate: then only the pooled proportions are used.
    complete = all(len(rates[side]) == len(sides[side]) for side in sides)
    run_values = rates if complete else pooled
    entry = _entry(pooled, within_ci, "proportions", run_values, threshold_pct, cautious,
                   digits=6)  # fmt: skip
    entry["failed"] = {side: tallies[side][0] for side in sides}
    entry["settled"] = {side: tallies[side][1] for side in sides}
    return entry


def exit_code(document: Mapping[str, Any]) -> int:
    """:data:`EXIT_REGRESSION` when the comparison found a regression, else 0."""
    return EXIT_REGRESSION if document.get("verdict") == "regressed" else 0
