"""Is the candidate slower than the baseline? ``loadtest compare``'s statistics, read-only.

Run-to-run spread of a p95 can be ~10× what a bootstrap over one run's *requests* suggests
(``../shared/FINDINGS.md``): requests of one run are not independent, they share the minute in
which the target was slow. So intervals here come from resampling **whole time windows** (a
block bootstrap), and, with several runs per side, from the spread **between runs**; the wider
of the two is used. The method is written down once, in ``docs/metrics.md`` ("Comparing
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from loadtest.analysis.run_reader import LATENESS_S
from loadtest.analysis.summary import RunFacts, build_summary
from loadtest.errors import UsageError
from loadtest.metrics.catalog import METRICS
from loadtest.metrics.histogram import PERCENTILES, LatencyHistogram, bucket_bounds
from loadtest.metrics.interval_log import HLOG_FILE, hlog_lines
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
CONFIDENCE = 0.95
#: A bucket should be long enough to hold a slow spell whole (30 s), but a run needs enough of
#: them for a bootstrap to mean anything (:data:`MIN_BUCKETS`); shorter runs use shorter ones.
BUCKET_S = 30.0
SHORTER_SPANS_S: tuple[float, ...] = (15.0, 10.0, 5.0, 2.0, 1.0)
MIN_BUCKETS = 10
#: Most buckets per run: a soak of days gets longer buckets, so that one run's resampling
#: matrix (buckets × distinct histogram counters × 8 bytes) stays under ~80 MB.
MAX_BUCKETS = 1000
LONGER_SPANS_S: tuple[float, ...] = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
#: A resampled statistic may be undefined (every drawn bucket empty of the metric); an interval
#: is given only when at least this share of the resamples defines it.
MIN_DEFINED_SHARE = 0.95
EXIT_REGRESSION = 4
INTERVAL_METHOD = (
    "block bootstrap over time windows; with at least 2 runs on a side also Welch's t-interval "
    "of the run values; the wider"
)
VERDICTS: tuple[str, ...] = ("improved", "unchanged", "regressed")

#: Most float64 cells of one pooled-counts block (resamples × counters): ~8 MB.
_CELLS_PER_BLOCK = 1_000_000
_Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


# -- reading: per-bucket histograms of the steady state ------------------------------------


@dataclass
class BucketHistograms:
    """One metric's steady-state histograms, one per bucket, as their non-zero counters.

    A 30 s bucket of a latency uses a few hundred of HdrHistogram's ~23,500 counters, so an
    8-hour run's 960 buckets of one metric take a few MB, where dense histograms would take
    180 MB.

    Attributes:
        indices: per bucket, the HdrHistogram counter indices with a count (ascending).
        counts: per bucket, the counts at those indices.
    """

    indices: list[np.ndarray]
    counts: list[np.ndarray]

    @property
    def buckets(self) -> int:
        """How many buckets (empty ones included)."""
        return len(self.indices)

    @property
    def total(self) -> int:
        """Samples in all buckets."""
        return int(sum(int(c.sum()) for c in self.counts))

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """The buckets as one matrix over the counters any of them uses.

        Returns:
            ``(highest_us, matrix)``: the highest value equivalent to each used counter (µs,
            ascending), and a float64 ``(buckets, counters)`` matrix of counts.
        """
        used = [i for i in self.indices if i.size]
        union = np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)
        matrix = np.zeros((self.buckets, union.size))
        for row, (idx, cnt) in enumerate(zip(self.indices, self.counts, strict=True)):
            if idx.size:
                matrix[row, np.searchsorted(union, idx)] = cnt
        lowest, width = bucket_bounds(LatencyHistogram().hdr, union.astype(np.int64))
        return (lowest + width - 1).astype(np.int64), matrix


def bucket_span(steady_s: float, window_s: float) -> float:
    """The bucket length for a run's block bootstrap.

    30 s when that gives at least :data:`MIN_BUCKETS` buckets; a shorter run: the longest of
    :data:`SHORTER_SPANS_S` that does, else the run's window. A run so long that 30 s buckets
    would exceed :data:`MAX_BUCKETS`: the shortest of :data:`LONGER_SPANS_S` that does not
    (this bounds the memory of the resampling). Only whole numbers of windows qualify.
    """

    def whole(span: float) -> bool:
        windows = span / window_s
        return span >= window_s and abs(windows - round(windows)) < 1e-9

    if whole(BUCKET_S) and steady_s / BUCKET_S > MAX_BUCKETS:
        for span in LONGER_SPANS_S:
            if whole(span) and steady_s / span <= MAX_BUCKETS:
                return span
    for span in (BUCKET_S, *SHORTER_SPANS_S):
        if whole(span) and steady_s / span >= MIN_BUCKETS - 1e-9:
            return span
    return window_s


def read_bucket_histograms(
    run_dir: Path,
    metrics: Iterable[str],
    *,
    from_s: float,
    to_s: float,
    bucket_s: float,
) -> tuple[dict[str, BucketHistograms], int]:
    """Each metric's histogram per bucket of the steady span, in one pass over the log.

    Buckets start at ``from_s`` and are ``bucket_s`` long; the last one also takes the rest of
    the span (shorter than a bucket), so every steady window is in exactly one bucket and the
    buckets together hold exactly the summary's steady-state histogram. A window belongs to the
    span when ``from_s <= start < to_s`` (the summary's span is aligned to whole windows, so
    this is the summary's own rule). Memory stays bounded: a bucket is dense only until no
    later line can belong to it (:data:`~loadtest.analysis.run_reader.LATENESS_S`), then only
    its non-zero counters are kept; a line arriving later still is added to them.

    Args:
        run_dir: the run directory.
        metrics: the latency metrics to read (lines of others are not decoded).
        from_s, to_s: the steady span, epoch seconds.
        bucket_s: the bucket length, seconds.

    Returns:
        ``(metric → histograms, damaged lines skipped)``.

    Raises:
        UsageError: the interval log is missing or unreadable.
    """
    wanted = frozenset(metrics)
    buckets = max(1, math.floor((to_s - from_s) / bucket_s + 1e-9))
    dense: dict[tuple[str, int], LatencyHistogram] = {}
    sparse: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    damaged = [0]  # lines hlog_lines could not parse, and blobs that did not decode
    newest = -math.inf

    def bucket_end(index: int) -> float:
        return to_s if index == buckets - 1 else from_s + (index + 1) * bucket_s

    path = Path(run_dir) / HLOG_FILE
    try:
        with path.open(encoding="utf-8") as hlog:
            for metric, start, _length, blob in hlog_lines(hlog, damaged):
                if start > newest:
                    newest = start
                    for key in [k for k in dense if bucket_end(k[1]) + LATENESS_S <= newest]:
                        sparse[key] = _nonzero(dense.pop(key))
                if metric not in wanted or not from_s <= round(start, 6) < to_s:
                    continue
                index = min(int((start - from_s) / bucket_s + 1e-9), buckets - 1)
                key = (metric, index)
                try:
                    if key in sparse:  # later than LATENESS_S: rare, so the slow path
                        late = LatencyHistogram()
                        late.add_blob(blob.encode("ascii"))
                        sparse[key] = _add_nonzero(sparse[key], _nonzero(late))
                    else:
                        histogram = dense.get(key)
                        if histogram is None:
                            dense[key] = histogram = LatencyHistogram()
                        histogram.add_blob(blob.encode("ascii"))
                except ValueError:  # a damaged line (normally only one cut by a crash)
                    damaged[0] += 1
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"{run_dir}: cannot read the interval log ({reason})") from exc
    for key in list(dense):
        sparse[key] = _nonzero(dense.pop(key))
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    found = {}
    for metric in wanted:
        rows = [sparse.get((metric, index), empty) for index in range(buckets)]
        found[metric] = BucketHistograms([r[0] for r in rows], [r[1] for r in rows])
    return found, damaged[0]


def _nonzero(histogram: LatencyHistogram) -> tuple[np.ndarray, np.ndarray]:
    counts = np.ctypeslib.as_array(histogram.hdr.counts)
    indices = np.flatnonzero(counts)
    return indices.astype(np.int64), counts[indices].astype(np.int64)


def _add_nonzero(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    indices, inverse = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    counts = np.zeros(indices.size, dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([a[1], b[1]]))
    return indices, counts


# -- resampling ----------------------------------------------------------------------------


def pooled_percentiles_ms(
    highest_us: np.ndarray, pooled: np.ndarray, percentiles: Sequence[float]
) -> np.ndarray:
    """Percentiles of summed histograms, by HdrHistogram's definition (as ``summary_ms``).

    Args:
        highest_us: the highest value equivalent to each counter (µs, ascending).
        pooled: ``(rows, counters)`` summed counts, one histogram per row.
        percentiles: each in [0, 100].

    Returns:
        ``(rows, len(percentiles))`` values in ms; NaN for a row with no sample.
    """
    cumulative = np.cumsum(pooled, axis=1)
    total = cumulative[:, -1] if cumulative.shape[1] else np.zeros(len(pooled))
    values = np.full((len(pooled), len(percentiles)), np.nan)
    last = max(highest_us.size - 1, 0)
    for column, percentile in enumerate(percentiles):
        target = np.maximum(np.floor(percentile * total / 100 + 0.5), 1.0)
        position = np.minimum((cumulative < target[:, None]).sum(axis=1), last)
        if highest_us.size:
            values[:, column] = np.round(highest_us[position] / 1000.0, 3)
    values[total == 0] = np.nan
    return values


def bootstrap_percentiles_ms(
    highest_us: np.ndarray,
    matrix: np.ndarray,
    percentiles: Sequence[float],
    *,
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Block bootstrap of one run: resample whole buckets, read percentiles off their sum.

    Each resample draws ``n`` of the run's ``n`` buckets with replacement (as multinomial
    multiplicities) and adds their histograms; the percentile is then that of the pooled
    histogram, exactly. Vectorised: a block of resamples is one matrix product.

    Args:
        highest_us, matrix: the run's buckets, from :meth:`BucketHistograms.dense`.
        percentiles: each in [0, 100].
        resamples: how many resamples.
        rng: the random generator (seeded by the caller).

    Returns:
        ``(resamples, len(percentiles))`` values in ms (NaN where a resample has no sample).
    """
    n = matrix.shape[0]
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    values = np.empty((resamples, len(percentiles)))
    block = max(1, _CELLS_PER_BLOCK // max(1, matrix.shape[1]))
    for start in range(0, resamples, block):
        pooled = weights[start : start + block] @ matrix
        values[start : start + block] = pooled_percentiles_ms(highest_us, pooled, percentiles)
    return values


# -- interval and verdict arithmetic -------------------------------------------------------


def percentile_interval(draws: np.ndarray) -> tuple[float, float] | None:
    """The central :data:`CONFIDENCE` interval of bootstrap draws; ``None`` when fewer than
    :data:`MIN_DEFINED_SHARE` of them are defined."""
    defined = draws[np.isfinite(draws)]
    if draws.size == 0 or defined.size < MIN_DEFINED_SHARE * draws.size:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Run-to-run spread of one side (AIPerf's aggregation of repeated runs).

    Returns:
        ``{"runs", "values", "mean", "sd", "cv", "ci"}``: ``sd`` the sample standard deviation
        (n − 1), ``cv`` = sd / mean, ``ci`` the t-interval of the mean; ``sd``, ``cv`` and
        ``ci`` are ``None`` for a single run (and ``cv`` for a zero mean).
    """
    n = len(values)
    mean = float(np.mean(values))
    result: dict[str, Any] = {"runs": n, "values": list(values), "mean": mean,
                              "sd": None, "cv": None, "ci": None}  # fmt: skip
    if n >= 2:
        sd = float(np.std(values, ddof=1))
        half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
        result |= {"sd": sd, "cv": sd / mean if mean else None, "ci": (mean - half, mean + half)}
    return result


def welch_interval(base: Sequence[float], candidate: Sequence[float]) -> tuple[float, float]:
    """Welch's t-interval of mean(candidate) − mean(base) (Welch–Satterthwaite df).

    A side of one run has no spread of its own: it is then assumed to spread as the other
    side does (that side's variance for both, its n − 1 degrees of freedom), which is wider
    than ignoring the spread and is all one run allows. Needs ≥ 2 values on some side.
    """
    n1, n2 = len(base), len(candidate)
    if max(n1, n2) < 2:
        raise ValueError("a run-level interval needs two runs on at least one side")
    delta = float(np.mean(candidate) - np.mean(base))
    if min(n1, n2) < 2:
        variance = float(np.var(base if n1 > 1 else candidate, ddof=1))
        v1, v2 = variance / n1, variance / n2
        df = float(max(n1, n2) - 1)
    else:
        v1, v2 = float(np.var(base, ddof=1)) / n1, float(np.var(candidate, ddof=1)) / n2
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if v1 + v2 else 1.0
    if v1 + v2 == 0:
        return delta, delta
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(v1 + v2)
    return delta - half, delta + half


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Wilson's score interval of a proportion (``trials`` > 0)."""
    p = successes / trials
    z2 = _Z * _Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _Z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference_interval(
    base: tuple[int, int], candidate: tuple[int, int]
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) of p_candidate − p_base.

    Args:
        base, candidate: ``(events, trials)`` each, trials > 0.

    Built from each side's Wilson interval, so it behaves at 0 events and small counts, where
    the normal (Wald) interval collapses to a point.
    """
    p1, p2 = base[0] / base[1], candidate[0] / candidate[1]
    l1, u1 = wilson_interval(*base)
    l2, u2 = wilson_interval(*candidate)
    delta = p2 - p1
    return (delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))  # fmt: skip


def wider(*intervals: tuple[float, float] | None) -> tuple[tuple[float, float] | None, int]:
    """The widest of the given intervals and its position (``None``, -1 when none is given)."""
    best: tuple[float, float] | None = None
    position = -1
    for index, interval in enumerate(intervals):
        if interval is not None and (best is None or interval[1] - interval[0] > best[1] - best[0]):
            best, position = interval, index
    return best, position


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
        The ``loadtest.compare/1`` document (see ``docs/metrics.md``): ``schema``, ``base``,
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
