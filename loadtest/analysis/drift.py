"""Soak drift: did the target get worse over the run, and did the load generator leak?

For a run whose steady state holds at least :data:`MIN_BUCKETS` buckets, each of these per-bucket
series is tested for a monotonic trend:

- the p95 of ``ttfc_ms``, ``stream_ms`` and ``inter_chunk_ms`` (the bucket's merged histogram,
  never an average of per-window percentiles);
- the error rate ``streams_failed / (streams_completed + streams_failed)``, over groups of
  consecutive buckets holding a few failures each (:func:`error_rate_points`);
- apart from those, the generator's own memory (``rss_mb``).

Statistics (``docs/analysis.md``, "Soak drift and nightly trends"): Mann–Kendall with the
Hamed–Rao autocorrelation correction (``pymannkendall``; neighbouring buckets of a soak are
correlated, and the plain test then calls noise a trend) and the Theil–Sen slope with its 95 %
interval (``scipy.stats.theilslopes``), per hour and in % per hour of the series' median. A
metric *drifts* when all three hold: p < :data:`ALPHA`, the slope's interval excludes 0, and the
slope is at least :data:`MIN_PCT_PER_H` % of the median per hour (a statistically sure trend too
small to matter is not worth a red line in a report). The run *drifts* when a target metric drifts
the worse way (rising); a leak of the generator is reported on its own line, because it is the
tool's fault, not the target's.

Memory: the series carries, per bucket, the largest of its windows' last RSS samples, which rides
the garbage collector's sawtooth. A trailing rolling minimum over :data:`RSS_ROLLING_MIN_S` of
buckets keeps the floor the heap returns to after each collection, which is what grows in a leak.

Pure: reads a :class:`~loadtest.analysis.series.WindowSeries`, returns plain JSON-ready dicts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from loadtest.analysis.run_reader import RunRead
from loadtest.analysis.series import WindowSeries
from loadtest.utc import utc_seconds

#: Fewest steady-state buckets for which drift is computed at all (the contract's 30 windows).
MIN_BUCKETS = 30
#: Most buckets worth testing: Theil–Sen is quadratic in them, and the plot series never has more.
MAX_BUCKETS = 2000
#: Runs longer than this are tested on buckets of :data:`LONG_RUN_SPAN_S`.
LONG_RUN_S = 3600.0
#: A minute holds enough streams for a steady p95 and still gives 480 buckets in 8 hours.
LONG_RUN_SPAN_S = 60.0
#: Significance level of the Mann–Kendall test.
ALPHA = 0.05
#: Smallest slope that counts as drift, in % of the series' median per hour.
MIN_PCT_PER_H = 1.0
#: For an error rate whose median is 0 (no relative size): smallest slope, as a fraction per hour
#: (0.001 = 0.1 percentage points per hour).
MIN_ERROR_RATE_PER_H = 0.001
#: Lags of the autocorrelation function the Hamed–Rao correction uses. All lags (the library's
#: default) let spurious correlations at long lags shrink the variance: on white noise of 2,000
#: buckets it gave p = 0.00008, and on AR(1) noise (φ = 0.5) 17–25 % false trends at α = 0.05.
#: The first three, as Hamed and Rao suggest, gave 7–9 % (measured, 200 series per case).
HAMED_RAO_LAGS = 3
#: Width of the rolling minimum taken over the RSS series (at most a tenth of the buckets).
RSS_ROLLING_MIN_S = 300.0
#: The target's metrics tested on their p95 per bucket, all worse when they rise.
LATENCY_METRICS: tuple[str, ...] = ("ttfc_ms", "stream_ms", "inter_chunk_ms")
ERROR_RATE = "error_rate"
#: Failures an error-rate point holds on average (see :func:`error_rate_points`).
ERRORS_PER_GROUP = 5.0
STAT = "p95"


def drift_span(duration_s: float | None, window_s: float) -> float | None:
    """The extra bucket length to read for drift, or ``None`` to use the plot series.

    Runs over an hour get minute buckets (more streams per bucket: a steadier p95); shorter
    runs use the plot series, which has 30–2,000 buckets for any run of 30 windows or more.
    """
    if duration_s is None or duration_s <= LONG_RUN_S:
        return None
    if duration_s / LONG_RUN_SPAN_S > MAX_BUCKETS:
        return None  # over ~33 h: the plot series' longer buckets keep Theil–Sen affordable
    ratio = LONG_RUN_SPAN_S / window_s
    return LONG_RUN_SPAN_S if window_s > 0 and abs(ratio - round(ratio)) < 1e-9 else None


def run_drift(read: RunRead) -> dict[str, Any] | None:
    """Drift of a run read by :func:`~loadtest.analysis.summary.read_run_dir`.

    Uses the minute series when one was read (see :func:`drift_span`) and it holds enough
    steady buckets, else the plot series.

    Returns:
        The ``drift`` section of ``report.json``, or ``None`` when the steady state holds fewer
        than :data:`MIN_BUCKETS` buckets (the contract's ``null``).
    """
    candidates = [read.series[LONG_RUN_SPAN_S]] if LONG_RUN_SPAN_S in read.series else []
    candidates.append(read.series[read.plot_span_s])
    for series in candidates:
        if len(steady_indices(series, read.steady_from_s, read.steady_to_s)) >= MIN_BUCKETS:
            return series_drift(series, read.steady_from_s, read.steady_to_s)
    return None


def steady_indices(series: WindowSeries, from_s: float, to_s: float) -> list[int]:
    """Indices of the buckets wholly inside ``[from_s, to_s]`` (as windowed SLO checks count)."""
    span = series.span_s
    return [i for i, start in enumerate(series.start_s) if start >= from_s and start + span <= to_s]


def series_drift(series: WindowSeries, from_s: float, to_s: float) -> dict[str, Any] | None:
    """Drift over the steady buckets of ``series``; ``None`` below :data:`MIN_BUCKETS`.

    Returns:
        ``{"verdict", "span_s", "windows", "from_utc", "to_utc", "metrics": {name: {...}},
        "generator": {...}, "sentence", "method"}`` (see :func:`trend_of` for a metric's keys).
    """
    indices = steady_indices(series, from_s, to_s)
    if len(indices) < MIN_BUCKETS:
        return None
    span = series.span_s
    starts = np.array([series.start_s[i] for i in indices], dtype=float)
    # Hours since the first steady bucket's start: slopes come out per hour.
    hours = (starts - starts[0]) / 3600.0
    metrics: dict[str, dict[str, Any]] = {}
    for metric in LATENCY_METRICS:
        values = (series.percentiles.get(metric) or {}).get(STAT)
        if values is None:
            continue  # never recorded in this run (e.g. one-chunk replies have no gaps)
        picked = _floats(values[i] for i in indices)
        metrics[metric] = trend_of(hours, picked, unit="ms", stat=STAT)
    rate_hours, rates, group = error_rate_points(series, indices, hours)
    metrics[ERROR_RATE] = trend_of(rate_hours, rates, unit="fraction")
    metrics[ERROR_RATE]["buckets_per_point"] = group
    generator = _generator_memory(series, indices, hours)
    verdict = overall_verdict(metrics)
    return {
        "verdict": verdict,
        "span_s": span,
        "windows": len(indices),
        "from_utc": utc_seconds(starts[0]),
        "to_utc": utc_seconds(starts[-1] + span),
        "metrics": metrics,
        "generator": generator,
        "sentence": drift_sentence(verdict, metrics, len(indices), span),
        "method": {
            "test": "Mann–Kendall, Hamed–Rao correction",
            "hamed_rao_lags": HAMED_RAO_LAGS,
            "slope": "Theil–Sen, 95 % interval",
            "alpha": ALPHA,
            "min_pct_per_h": MIN_PCT_PER_H,
            "min_error_rate_per_h": MIN_ERROR_RATE_PER_H,
        },
    }


def trend_of(
    hours: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    unit: str,
    stat: str | None = None,
    worse_when: str = "rising",
) -> dict[str, Any]:
    """Trend test and slope of one per-bucket series.

    Args:
        hours: each bucket's time, hours from the first.
        values: each bucket's value; NaN for a bucket without one (left out).
        unit: ``"ms"``, ``"MB"`` or ``"fraction"`` (an error rate): names the slope keys.
        stat: the per-bucket statistic (``"p95"``), for the sentence.
        worse_when: the direction that is a degradation (``"rising"`` for every metric here).

    Returns:
        ``{"verdict", "direction", "worse", "stat", "unit", "slope_per_h", "slope_ci_per_h",
        "slope_pct_per_h", "median", "p_value", "windows", "reason"}``, plus
        ``slope_ms_per_h`` / ``slope_ci_ms_per_h`` (``ms``) or ``slope_mb_per_h`` /
        ``slope_ci_mb_per_h`` (``MB``). ``verdict`` is ``drift``, ``no drift`` or
        ``inconclusive``; ``reason`` says why when it is not a plain test result.
    """
    t = np.asarray(hours, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(y)
    t, y = t[keep], y[keep]
    result: dict[str, Any] = {
        "verdict": "inconclusive",
        "direction": None,
        "worse": False,
        "stat": stat,
        "unit": unit,
        "slope_per_h": None,
        "slope_ci_per_h": None,
        "slope_pct_per_h": None,
        "median": None,
        "p_value": None,
        "windows": int(y.size),
        "reason": None,
    }
    if y.size < MIN_BUCKETS:
        result["reason"] = f"{y.size} buckets with a value, fewer than {MIN_BUCKETS}"
        return _with_unit_keys(result)
    median = float(np.median(y))
    result["median"] = median
    if float(np.ptp(y)) == 0.0:
        # A constant series has no trend to find: "no drift" is the plain answer (an error rate
        # of 0 all night is the common case), not "we could not tell".
        result |= {"verdict": "no drift", "slope_per_h": 0.0, "slope_ci_per_h": [0.0, 0.0],
                   "slope_pct_per_h": 0.0 if median else None, "p_value": 1.0,
                   "reason": "constant"}  # fmt: skip
        return _with_unit_keys(result)
    import pymannkendall  # imported here: the analysis is only paid for where it runs
    from scipy.stats import theilslopes

    with warnings.catch_warnings():
        # Hamed–Rao divides by a corrected variance that can be ~0 on odd series; that case
        # is caught below as a non-finite p, not printed as a RuntimeWarning.
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(pymannkendall.hamed_rao_modification_test(y, ALPHA, HAMED_RAO_LAGS).p)
    fit = theilslopes(y, t, alpha=0.95)
    slope, low, high = float(fit.slope), float(fit.low_slope), float(fit.high_slope)
    pct = 100.0 * slope / median if median > 0 else None
    result |= {"slope_per_h": slope, "slope_ci_per_h": [low, high], "slope_pct_per_h": pct}
    if not math.isfinite(p_value) or not all(map(math.isfinite, (slope, low, high))):
        result["reason"] = "the trend test is undefined on this series"
        return _with_unit_keys(result)
    result["p_value"] = p_value
    if pct is not None:
        large = abs(pct) >= MIN_PCT_PER_H
    else:  # only an error rate's median can be 0 here: judge its slope in absolute terms
        large = unit == "fraction" and abs(slope) >= MIN_ERROR_RATE_PER_H
    excludes_zero = low > 0 or high < 0
    if p_value < ALPHA and excludes_zero and large:
        direction = "rising" if slope > 0 else "falling"
        result |= {"verdict": "drift", "direction": direction, "worse": direction == worse_when}
    else:
        result["verdict"] = "no drift"
    return _with_unit_keys(result)


def overall_verdict(metrics: dict[str, dict[str, Any]]) -> str:
    """``drift`` if any target metric drifts the worse way; else ``no drift`` if any metric
    could be judged; else ``inconclusive``."""
    if any(m["verdict"] == "drift" and m["worse"] for m in metrics.values()):
        return "drift"
    if any(m["verdict"] != "inconclusive" for m in metrics.values()):
        return "no drift"
    return "inconclusive"


def drift_sentence(
    verdict: str, metrics: dict[str, dict[str, Any]], windows: int, span_s: float
) -> str:
    """One line: ``drift: ttfc_ms p95 +38 ms/h (95 % CI +21…+55)`` or what was found instead."""
    worse = [(k, m) for k, m in metrics.items() if m["verdict"] == "drift" and m["worse"]]
    better = [(k, m) for k, m in metrics.items() if m["verdict"] == "drift" and not m["worse"]]
    if verdict == "drift":
        text = "drift: " + ", ".join(metric_phrase(k, m) for k, m in worse)
    elif verdict == "no drift":
        judged = [_label(k, m) for k, m in metrics.items() if m["verdict"] != "inconclusive"]
        hours = windows * span_s / 3600.0
        text = (f"no drift in {', '.join(judged)} over {windows:,} buckets of "
                f"{span_s:g} s ({hours:.1f} h)")  # fmt: skip
    else:
        reasons = {m.get("reason") for m in metrics.values() if m.get("reason")}
        text = "drift inconclusive: " + ("; ".join(sorted(reasons)) or "no metric to test")
    if better:
        text += "; improving: " + ", ".join(metric_phrase(k, m) for k, m in better)
    return text


def metric_phrase(name: str, metric: dict[str, Any]) -> str:
    """``ttfc_ms p95 +38 ms/h (95 % CI +21…+55)``; an error rate in percentage points."""
    slope, ci = metric["slope_per_h"], metric["slope_ci_per_h"] or [math.nan, math.nan]
    if metric["unit"] == "fraction":
        scale, unit = 100.0, "pp/h"  # percentage points: a rate's % of itself would confuse
    else:
        scale, unit = 1.0, f"{metric['unit']}/h"
    low, high = (_signed(v * scale) for v in ci)
    return f"{_label(name, metric)} {_signed(slope * scale)} {unit} (95 % CI {low}…{high})"


def _label(name: str, metric: dict[str, Any]) -> str:
    return f"{name} {metric['stat']}" if metric.get("stat") else name


def _signed(value: float) -> str:
    """A slope for people: sign always, digits by size (+7,200 · +38 · +2.4 · +0.031)."""
    if not math.isfinite(value):
        return "?"
    size = abs(value)
    if size >= 100:
        return f"{value:+,.0f}"
    if size >= 10:
        return f"{value:+.0f}"
    if size >= 1:
        return f"{value:+.1f}"
    return f"{value:+.2g}" if value else "+0"


def _with_unit_keys(result: dict[str, Any]) -> dict[str, Any]:
    """The contract's unit-named keys beside the generic ones (``slope_ms_per_h`` …)."""
    unit = result["unit"]
    for suffix, key in (("ms", "ms"), ("MB", "mb")):
        if unit == suffix:
            result[f"slope_{key}_per_h"] = result["slope_per_h"]
            result[f"slope_ci_{key}_per_h"] = result["slope_ci_per_h"]
    if unit == "fraction":  # the contract's key exists for every metric; null where not ms
        result["slope_ms_per_h"] = None
        result["slope_ci_ms_per_h"] = None
    return result


def _floats(values: Any) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def error_rate_points(
    series: WindowSeries, indices: list[int], hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The error rate per group of consecutive buckets: ``(hours, rates, buckets per group)``.

    Failures are rare, so most single buckets have a rate of 0, and Theil–Sen (the median of
    pairwise slopes) then says 0 even when failures grow. Buckets are pooled, in order, so that
    a group holds :data:`ERRORS_PER_GROUP` failures on average, yet never into fewer than
    :data:`MIN_BUCKETS` groups. A group's rate is its failures over its ended streams; a group
    in which no stream ended has none (NaN).
    """
    failed = series.counts.get("streams_failed") or [0] * len(series)
    completed = series.counts.get("streams_completed") or [0] * len(series)
    fails = np.array([failed[i] for i in indices], dtype=float)
    ended = fails + np.array([completed[i] for i in indices], dtype=float)
    per_bucket = float(fails.mean()) if fails.size else 0.0
    wanted = math.ceil(ERRORS_PER_GROUP / per_bucket) if per_bucket > 0 else 1
    group = max(1, min(wanted, len(indices) // MIN_BUCKETS))
    usable = len(indices) - len(indices) % group  # whole groups only: equal weights
    if group > 1:
        fails = fails[:usable].reshape(-1, group).sum(axis=1)
        ended = ended[:usable].reshape(-1, group).sum(axis=1)
        hours = hours[:usable:group]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(ended > 0, fails / np.where(ended > 0, ended, 1.0), math.nan)
    return hours, rates, group


def _generator_memory(
    series: WindowSeries, indices: list[int], hours: np.ndarray
) -> dict[str, Any]:
    values = series.gauges.get("rss_mb")
    if values is None:
        result = trend_of([], [], unit="MB")
        result["reason"] = "the generator's memory was not sampled"
    else:
        raw = _floats(values[i] for i in indices)
        width = max(1, min(round(RSS_ROLLING_MIN_S / series.span_s), len(indices) // 10))
        floor = rolling_min(raw, width)
        result = trend_of(hours[width - 1 :], floor, unit="MB")
        result["rolling_min_buckets"] = width
    result["metric"] = "rss_mb"
    result["sentence"] = generator_sentence(result)
    return result


def rolling_min(values: np.ndarray, width: int) -> np.ndarray:
    """Trailing minimum over ``width`` values, NaNs ignored (all-NaN windows stay NaN); one
    value per full window, so ``len(values) - width + 1`` values."""
    if width <= 1 or values.size < width:
        return values.copy() if width <= 1 else np.array([], dtype=float)
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN is the answer
        return np.nanmin(windows, axis=1)


def generator_sentence(memory: dict[str, Any]) -> str:
    """The generator's own line: a leak of the tool is not a finding about the target."""
    if memory["verdict"] == "drift" and memory["worse"]:
        slope = _signed(memory["slope_per_h"])
        low, high = (_signed(v) for v in memory["slope_ci_per_h"])
        return (f"the load generator's memory grew {slope} MB/h (95 % CI {low}…{high}): "
                "the tool, not the target")  # fmt: skip
    if memory["verdict"] == "inconclusive":
        return f"the load generator's memory: inconclusive ({memory.get('reason')})"
    return "the load generator's memory held steady"


def drift_rows(drift: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """One row per tested series, the generator last, for the reports' Drift tables:
    ``(series, verdict, slope per hour, 95 % interval, % of median per hour, p)``."""
    rows = []
    named = [*drift.get("metrics", {}).items(), ("generator rss_mb", drift.get("generator"))]
    for name, metric in named:
        if not metric:
            continue
        label = _label(name, metric)
        if metric["unit"] == "fraction":
            scale, unit = 100.0, "pp/h"
        else:
            scale, unit = 1.0, f"{metric['unit']}/h"
        slope, ci = metric.get("slope_per_h"), metric.get("slope_ci_per_h")
        pct, p_value = metric.get("slope_pct_per_h"), metric.get("p_value")
        verdict = metric["verdict"]
        if verdict == "drift":
            verdict += f" ({metric['direction']})"
        if metric.get("reason") and metric["verdict"] == "inconclusive":
            verdict += f": {metric['reason']}"
        rows.append((
            label,
            verdict,
            f"{_signed(slope * scale)} {unit}" if slope is not None else "–",
            f"{_signed(ci[0] * scale)}…{_signed(ci[1] * scale)}" if ci else "–",
            f"{_signed(pct)} %/h" if pct is not None else "–",
            "–" if p_value is None else "< 0.001" if p_value < 0.001 else f"{p_value:.2g}",
        ))  # fmt: skip
    return rows
