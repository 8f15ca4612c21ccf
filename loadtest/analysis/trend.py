"""Nightly trends: where in a series of runs did a headline metric step, and is the newest worse?

Runs are ordered by start time (``run.json`` ``load.started_s``, else ``started_utc``). Per
headline metric (steady-state ``ttfc_ms.p95``, ``stream_ms.p95``, ``inter_chunk_ms.p95`` and
``error_rate``, all lower-is-better) the values across runs are searched for change points with
E-Divisive as Apache Otava does it (Fleming et al., "Hunter: Using Change Point Detection to Hunt
for Performance Regressions", ICPE 2023, after Matteson and James 2014):

1. *Split*: windows of :data:`WINDOW_LEN` runs, half overlapping; in each, the divisive energy
   statistic Q̂ proposes the best split of every segment, and a two-sided Student's t-test
   between the two sides keeps it while p ≤ 10 × :data:`MAX_PVALUE` ("weak" change points).
2. *Merge*: over the whole series, the weakest point (largest p) is dropped and its neighbours
   re-tested until every point has p < :data:`MAX_PVALUE`.

Why our own code: MongoDB's ``signal-processing-algorithms`` pins numpy < 2, gevent < 25 and
Python 3.11, and ``apache-otava`` pins numpy and scipy below ours and brings BigQuery, Postgres
and Slack clients; neither installs beside this tool. Why a t-test rather than E-Divisive's
original permutation test: with ten nightlies, a perfect 6 | 4 split is one of only 210 orders,
so no number of permutations can give p below ~0.005, and Otava's 0.001 would never be reached.

A run's metric is read from its ``summary.json`` (as CI jobs do); a run without one gets its
summary built in memory from the raw files (nothing is written: trend is read-only).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.errors import UsageError
from loadtest.utc import utc_seconds

TREND_SCHEMA = "loadtest.trend/1"
#: Significance of a change point (Otava's default).
MAX_PVALUE = 0.001
#: Runs per window of the split step (Otava's default).
WINDOW_LEN = 50
#: A newest segment worse than the one before by less than this (%) does not exit 4: a real but
#: tiny step is noted, not a regression (the same default as ``loadtest compare``'s threshold).
DEFAULT_THRESHOLD_PCT = 5.0
#: Fewest runs a trend is computed on: with two, no split can be significant.
MIN_RUNS = 3
#: Headline metrics: name → where it sits in ``summary.json``; lower is better for all.
HEADLINE_METRICS: tuple[str, ...] = ("ttfc_ms.p95", "stream_ms.p95", "inter_chunk_ms.p95",
                                     "error_rate")  # fmt: skip


@dataclass
class RunPoint:
    """One run of the series: its directory, start and headline values (``None``: not recorded)."""

    path: Path
    started_s: float
    values: dict[str, float | None]

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)


@dataclass
class ChangePoint:
    """A step between ``index - 1`` and ``index`` of a series (``index`` opens the new segment).

    Attributes:
        index: first position of the new segment.
        qhat: the energy statistic that proposed it.
        p_value: the t-test between the segments on either side (bounded by neighbouring points).
        mean_before, mean_after: those segments' means.
        std_before, std_after: their standard deviations (ddof 1; 0 for a single value).
    """

    index: int
    qhat: float
    p_value: float = 1.0
    mean_before: float = math.nan
    mean_after: float = math.nan
    std_before: float = 0.0
    std_after: float = 0.0

    @property
    def magnitude(self) -> float:
        """Otava's change magnitude: the larger relative change, forward or backward."""
        forward = self.mean_after / self.mean_before - 1.0 if self.mean_before else 0.0
        backward = self.mean_before / self.mean_after - 1.0 if self.mean_after else 0.0
        return max(abs(forward), abs(backward))


# -- E-Divisive -------------------------------------------------------------------------------


def energy_candidate(values: np.ndarray) -> tuple[int, int, float] | None:
    """The best split of ``values`` by the divisive energy statistic: ``(τ, κ, Q̂)``.

    Q̂(τ, κ) = 2/(n+m) Σ|Xᵢ−Yⱼ| − 2m/((n+m)(n−1)) Σᵢ<ₖ|Xᵢ−Xₖ| − 2n/((n+m)(m−1)) Σⱼ<ₖ|Yⱼ−Yₖ|
    for X = values[:τ] (n values), Y = values[τ:κ] (m values), maximised over 0 < τ < κ ≤ len.
    A summed-area table of the distance matrix makes every block sum O(1).
    """
    size = values.size
    if size < 2:
        return None
    distances = np.abs(values[:, None] - values[None, :])
    table = np.zeros((size + 1, size + 1))
    table[1:, 1:] = distances.cumsum(axis=0).cumsum(axis=1)

    def block(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        return table[b, d] - table[a, d] - table[b, c] + table[a, c]

    tau, kappa = np.meshgrid(np.arange(1, size), np.arange(2, size + 1), indexing="ij")
    valid = kappa > tau
    tau, kappa = tau[valid], kappa[valid]
    zero = np.zeros_like(tau)
    n, m = tau.astype(float), (kappa - tau).astype(float)
    between = block(zero, tau, tau, kappa)
    within_x = block(zero, tau, zero, tau) / 2.0
    within_y = block(tau, kappa, tau, kappa) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        # A one-value side has no pairs: its term is 0 (0/0 here), as in Otava.
        x_term = np.where(n > 1, 2.0 * m / ((n + m) * (n - 1.0)) * within_x, 0.0)
        y_term = np.where(m > 1, 2.0 * n / ((n + m) * (m - 1.0)) * within_y, 0.0)
    q = 2.0 / (n + m) * between - x_term - y_term
    best = int(np.argmax(q))
    return int(tau[best]), int(kappa[best]), float(q[best])


def t_test(left: np.ndarray, right: np.ndarray) -> tuple[float, float, float, float, float]:
    """Two-sided Student's t-test of two segments: ``(p, mean_l, mean_r, std_l, std_r)``."""
    from scipy.stats import ttest_ind_from_stats  # scipy only where a trend is computed

    mean_l, mean_r = float(np.mean(left)), float(np.mean(right))
    std_l = float(np.std(left, ddof=1)) if left.size >= 2 else 0.0
    std_r = float(np.std(right, ddof=1)) if right.size >= 2 else 0.0
    if left.size + right.size <= 2:
        return 1.0, mean_l, mean_r, std_l, std_r
    if std_l == 0.0 and std_r == 0.0:
        # Noise-free segments: any difference is certain, none is no evidence at all (scipy
        # would divide by zero).
        return (0.0 if mean_l != mean_r else 1.0), mean_l, mean_r, std_l, std_r
    p = float(ttest_ind_from_stats(mean_l, std_l, left.size, mean_r, std_r, right.size).pvalue)
    return (p if math.isfinite(p) else 1.0), mean_l, mean_r, std_l, std_r


def _bounds(points: Sequence[ChangePoint], length: int) -> list[int]:
    return [0, *(p.index for p in points), length]


def _test_at(point: ChangePoint, series: np.ndarray, start: int, stop: int) -> ChangePoint:
    left, right = series[start : point.index], series[point.index : stop]
    p, mean_l, mean_r, std_l, std_r = t_test(left, right)
    point.p_value, point.mean_before, point.mean_after = p, mean_l, mean_r
    point.std_before, point.std_after = std_l, std_r
    return point


def _divisive(series: np.ndarray, max_pvalue: float) -> list[ChangePoint]:
    """E-Divisive on one window: split the segment with the best Q̂ while the split is
    significant (Otava's ``ChangePointDetector`` with its t-test tester)."""
    points: list[ChangePoint] = []
    while True:
        bounds = _bounds(points, series.size)
        best: tuple[float, int, int, int, int] | None = None
        for start, stop in itertools.pairwise(bounds):
            found = energy_candidate(series[start:stop])
            if found is not None and (best is None or found[2] > best[0]):
                best = (found[2], start + found[0], start + found[1], start, stop)
        if best is None:
            return points
        qhat, index, kappa, start, stop = best
        point = _test_at(ChangePoint(index=index, qhat=qhat), series, start, stop)
        if point.p_value > max_pvalue and kappa < stop:
            # Q̂ chose X = [start, τ) against Y = [τ, κ): a bump that ends again before the
            # segment does (a regression fixed a few nights later). Against all of [τ, stop)
            # the t-test sees the bump diluted and Otava keeps nothing; against [τ, κ) it sees
            # the step Q̂ found. The merge step re-tests every point against its neighbours.
            point = _test_at(ChangePoint(index=index, qhat=qhat), series, start, kappa)
        if point.p_value > max_pvalue:
            return points
        points.append(point)
        points.sort(key=lambda p: p.index)


def change_points(
    values: Sequence[float],
    *,
    max_pvalue: float = MAX_PVALUE,
    window_len: int = WINDOW_LEN,
    min_magnitude: float = 0.0,
) -> list[ChangePoint]:
    """Otava's change points of a series (split in windows, then merge; see the module doc).

    Args:
        values: the series, oldest first, no missing values.
        max_pvalue: significance of a kept point (the split step uses 10 ×).
        window_len: runs per window of the split step.
        min_magnitude: a point whose relative change is at most this is dropped even if
            significant (Otava's default 0).

    Returns:
        The change points, by index, each tested against its neighbouring segments.
    """
    series = np.asarray(values, dtype=float)
    if series.size < 2:
        return []
    first_pass = max_pvalue * 10 if max_pvalue < 0.05 else max_pvalue  # Otava's relaxed pass
    step = max(1, window_len // 2)
    weak: dict[int, ChangePoint] = {}
    start = 0
    while start < series.size:
        end = min(start + window_len, series.size)
        found = _divisive(series[start:end], first_pass)
        for point in found:
            point.index += start
            weak.setdefault(point.index, point)
        start = max(found[-1].index if found else 0, start + step)
    points = sorted(weak.values(), key=lambda p: p.index)
    _retest_all(points, series)
    while points:  # merge: drop the weakest until all are significant (and large enough)
        weakest = max(points, key=lambda p: p.p_value)
        if weakest.p_value < max_pvalue:
            weakest = min(points, key=lambda p: p.magnitude)
            if weakest.magnitude > min_magnitude:
                return points
        points.remove(weakest)
        _retest_all(points, series)
    return points


def _retest_all(points: list[ChangePoint], series: np.ndarray) -> None:
    bounds = _bounds(points, series.size)
    for position, point in enumerate(points):
        _test_at(point, series, bounds[position], bounds[position + 2])


# -- runs -------------------------------------------------------------------------------------


def read_point(run_dir: Path) -> RunPoint:
    """A run's start and headline values.

    Raises:
        UsageError: not a run directory, or it has no start time.
    """
    from loadtest.analysis.summary import RunFacts, build_summary
    from loadtest.rundir import read_json

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no run.json)")
    facts = RunFacts(read_json(run_dir / "run.json"))
    if facts.started_s is None:
        raise UsageError(f"{run_dir}: run.json has no start time (load.started_s, started_utc)")
    summary_file = run_dir / "summary.json"
    summary = read_json(summary_file) if summary_file.is_file() else build_summary(run_dir)
    return RunPoint(path=run_dir, started_s=facts.started_s, values=headline_values(summary))


def headline_values(summary: dict[str, Any]) -> dict[str, float | None]:
    """The headline metrics of one summary; ``None`` where a metric was never recorded.

    ``error_rate`` is the SLO files' (``streams_failed / (streams_completed + streams_failed)``
    over the whole run's counts), undefined when no stream ended.
    """
    values: dict[str, float | None] = {}
    metrics = summary.get("metrics") or {}
    for name in HEADLINE_METRICS:
        if name == "error_rate":
            counts = summary.get("counts") or {}
            failed = int(counts.get("streams_failed", 0))
            ended = failed + int(counts.get("streams_completed", 0))
            values[name] = failed / ended if ended else None
            continue
        metric, _, stat = name.partition(".")
        stats = metrics.get(metric) or {}
        value = stats.get(stat)
        values[name] = float(value) if stats.get("count") and value is not None else None
    return values


def trend(
    points: Sequence[RunPoint],
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    max_pvalue: float = MAX_PVALUE,
    window_len: int = WINDOW_LEN,
) -> dict[str, Any]:
    """Change points per headline metric across runs, and whether the newest run regressed.

    A metric *regresses* when the newest run lies in a segment opened by a change point that
    made it worse (higher) by at least ``threshold_pct`` % of the segment before (any amount
    when that segment's mean is 0, as an error rate's can be).

    Returns:
        ``{"schema", "verdict", "regressed", "runs": [...], "metrics": {name: {...}},
        "sentence", "method"}``, JSON-ready.

    Raises:
        UsageError: fewer than :data:`MIN_RUNS` runs.
    """
    if len(points) < MIN_RUNS:
        raise UsageError(f"trend needs at least {MIN_RUNS} runs, got {len(points)}")
    ordered = sorted(points, key=lambda p: (p.started_s, p.name))
    newest = ordered[-1]
    metrics: dict[str, dict[str, Any]] = {}
    for name in HEADLINE_METRICS:
        runs = [p for p in ordered if p.values.get(name) is not None]
        values = [float(p.values[name]) for p in runs]  # type: ignore[arg-type]
        found = change_points(values, max_pvalue=max_pvalue, window_len=window_len)
        steps = [_step(point, runs) for point in found]
        regressed = bool(
            steps and runs and runs[-1] is newest and steps[-1]["worse"]
            and (steps[-1]["step_pct"] is None or steps[-1]["step_pct"] >= threshold_pct)
        )  # fmt: skip
        metrics[name] = {
            "runs": [p.name for p in runs],
            "values": values,
            "change_points": steps,
            "regressed": regressed,
        }
    regressed = [name for name, m in metrics.items() if m["regressed"]]
    return {
        "schema": TREND_SCHEMA,
        "verdict": "regression" if regressed else "no regression",
        "regressed": bool(regressed),
        "runs": [_run_entry(p) for p in ordered],
        "metrics": metrics,
        "sentence": _sentence(metrics, regressed, newest.name),
        "method": {
            "algorithm": "E-Divisive (Otava: split in windows, t-test, merge)",
            "max_pvalue": max_pvalue,
            "window_len": window_len,
            "threshold_pct": threshold_pct,
        },
    }


def _run_entry(point: RunPoint) -> dict[str, Any]:
    return {
        "name": point.name,
        "path": str(point.path),
        "started_utc": utc_seconds(point.started_s),
        "values": point.values,
    }


def _step(point: ChangePoint, runs: Sequence[RunPoint]) -> dict[str, Any]:
    step = point.mean_after - point.mean_before
    pct = 100.0 * step / point.mean_before if point.mean_before else None
    return {
        "index": point.index,
        "before_run": runs[point.index - 1].name,
        "after_run": runs[point.index].name,
        "mean_before": point.mean_before,
        "mean_after": point.mean_after,
        "step": step,
        "step_pct": pct,
        "p_value": point.p_value,
        "worse": step > 0,  # every headline metric is lower-is-better
    }


def _sentence(metrics: dict[str, dict[str, Any]], regressed: list[str], newest: str) -> str:
    if regressed:
        parts = []
        for name in regressed:
            last = metrics[name]["change_points"][-1]
            parts.append(f"{name} {format_step(name, last)} from {last['after_run']} on")
        return f"regression: the newest run ({newest}) is in a worse segment: " + "; ".join(parts)
    found = sum(len(m["change_points"]) for m in metrics.values())
    return f"no regression in the newest run ({newest}); {found} change point(s) in the series"


def format_value(name: str, value: float | None) -> str:
    """A metric's value for people: ms for latencies, % for the error rate."""
    if value is None or not math.isfinite(value):
        return "–"
    if name == "error_rate":
        return f"{100.0 * value:.3g} %"
    return f"{value:,.1f} ms"


def format_step(name: str, step: dict[str, Any]) -> str:
    """``+30.0 ms (+60.0 %)`` or, for the error rate, percentage points."""
    size = step["step"]
    absolute = f"{100.0 * size:+.3g} pp" if name == "error_rate" else f"{size:+,.1f} ms"
    pct = step["step_pct"]
    return f"{absolute} ({pct:+.1f} %)" if pct is not None else f"{absolute} (from 0)"
