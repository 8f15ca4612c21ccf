"""A run's histograms cut into time buckets, and the block bootstrap over them.

Requests of one run are not independent: they share the minute in which the target was slow,
so intervals that resample single requests are far too narrow (``../shared/FINDINGS.md``).
Resampling **whole time buckets** keeps that dependence. Every resampled percentile is read
off the pooled HdrHistogram counts, exactly as ``summary_ms`` reads one, never averaged over
buckets. Used by ``loadtest compare`` (:mod:`loadtest.analysis.compare`) and by the capacity
analysis (:mod:`loadtest.analysis.capacity`); the method is written down in
``docs/analysis.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtest.analysis.run_reader import LATENESS_S
from loadtest.errors import UsageError
from loadtest.metrics.histogram import LatencyHistogram, bucket_bounds
from loadtest.metrics.interval_log import HLOG_FILE, hlog_lines

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

#: Most float64 cells of one pooled-counts block (resamples × counters): ~8 MB.
_CELLS_PER_BLOCK = 1_000_000


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


def percentile_interval(draws: np.ndarray) -> tuple[float, float] | None:
    """The central :data:`CONFIDENCE` interval of bootstrap draws; ``None`` when fewer than
    :data:`MIN_DEFINED_SHARE` of them are defined."""
    defined = draws[np.isfinite(draws)]
    if draws.size == 0 or defined.size < MIN_DEFINED_SHARE * draws.size:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)
