"""Read a run's interval files in one streaming pass, in bounded memory.

A day-long soak has 86,400 one-second windows of ~8 histograms each (~190 KiB apiece in
memory), so nothing here keeps every window. Each histogram line of ``intervals.hlog`` is
decoded once and merged into a *base bucket* (``base_s`` long, a whole number of windows);
once no later line can still belong to a bucket (:data:`LATENESS_S` past its end: workers'
windows reach the file up to ~8 s late), the bucket is merged into the run totals, the
steady-state totals and every series it belongs to, and its histograms are dropped. A series
keeps per-bucket percentiles, never histograms.

Steady-state totals are exact sums of whole base buckets: the steady span starts at the first
base-bucket boundary at or after the requested start (so it may begin up to one base bucket
later, never earlier) and ends at the last boundary at or before the requested end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from loadtest.analysis.series import SERIES_STATS, WindowSeries
from loadtest.errors import UsageError
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.interval_log import COUNTS_FILE, HLOG_FILE, counts_lines, hlog_lines
from loadtest.metrics.window import MetricWindow

#: How long after a bucket's end a line may still arrive for it (workers report every 3 s and
#: the collector seals windows 8 s after they close; a margin on top).
LATENESS_S = 60.0
#: Bucket lengths a plot may use: round numbers a reader recognises on a time axis.
NICE_SPANS_S: tuple[float, ...] = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400,
)  # fmt: skip
DEFAULT_MAX_POINTS = 2000
#: Only these get a per-bucket series (plots and windowed checks need no others).
GENERATOR_GAUGES = ("cpu_share", "rss_mb")


@dataclass
class RunRead:
    """What one pass over a run's interval files found.

    Attributes:
        whole: every window merged (histograms, counts, breakdowns, gauges).
        steady: the windows of the steady span merged.
        steady_from_s, steady_to_s: the steady span actually used (base-bucket aligned).
        base_s: the base bucket length.
        series: span → per-bucket series, for the plot span and each requested span.
        plot_span_s: the span of the plot series (at most ``max_points`` buckets).
        saturated_windows: starts of the windows in which the generator was saturated.
        first_start_s, last_end_s: the span the files cover (``None`` when empty).
        skipped_lines: damaged lines ignored (normally only a last line cut by a crash).
        late_lines: histogram lines that arrived after their bucket was closed: counted in
            the totals, left out of the series.
    """

    whole: MetricWindow
    steady: MetricWindow
    steady_from_s: float
    steady_to_s: float
    base_s: float
    series: dict[float, WindowSeries]
    plot_span_s: float
    saturated_windows: list[float] = field(default_factory=list)
    first_start_s: float | None = None
    last_end_s: float | None = None
    skipped_lines: int = 0
    late_lines: int = 0


def plot_span(duration_s: float, window_s: float, max_points: int = DEFAULT_MAX_POINTS) -> float:
    """The smallest round bucket length, a multiple of ``window_s``, giving ≤ ``max_points``."""
    needed = max(window_s, duration_s / max(1, max_points))
    for span in NICE_SPANS_S:
        if span >= needed and _is_multiple(span, window_s):
            return float(span)
    return float(math.ceil(needed / window_s) * window_s)


def _is_multiple(span: float, unit: float) -> bool:
    ratio = Fraction(span).limit_denominator(1000) / Fraction(unit).limit_denominator(1000)
    return ratio.denominator == 1


def _common_base(spans: Iterable[float], window_s: float) -> float:
    """The longest bucket every span is a whole number of (never shorter than a window: a
    span that is no multiple of the window is then only window-aligned)."""
    fractions = [Fraction(s).limit_denominator(1000) for s in spans]
    numerator = 0
    denominator = 1
    for value in fractions:
        denominator = denominator * value.denominator // math.gcd(denominator, value.denominator)
    for value in fractions:
        numerator = math.gcd(numerator, int(value * denominator))
    return max(float(Fraction(numerator, denominator)), window_s)


class _SpanSeries:
    """One series under construction: buckets of ``span_s``, histograms until closed."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self.open: dict[float, MetricWindow] = {}
        self.closed: dict[float, dict[str, dict[str, float | int]]] = {}

    def add(self, bucket: MetricWindow, *, owned: bool = False) -> None:
        """Merge a base bucket in; ``owned``: the caller is done with it, so a bucket that
        starts a bucket of this span is kept as it is rather than copied."""
        key = _floor(bucket.start_s, self.span_s)
        target = self.open.get(key)
        if target is None and owned:
            bucket.end_s = key + self.span_s
            self.open[key] = bucket
            return
        if target is None:
            self.open[key] = target = MetricWindow(key, key + self.span_s)
        target.merge(bucket)

    def close_before(self, limit_s: float) -> None:
        for key in [k for k in self.open if k + self.span_s <= limit_s]:
            window = self.open.pop(key)
            self.closed[key] = {m: h.summary_ms() for m, h in window.histograms.items() if h.count}


def _floor(value: float, step: float) -> float:
    return math.floor(round(value / step, 9)) * step


def read_run(
    run_dir: Path,
    *,
    window_s: float,
    steady_from_s: float,
    steady_to_s: float,
    spans: Sequence[float] = (),
    duration_s: float | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> RunRead:
    """One pass over ``intervals.hlog`` and ``intervals.counts.jsonl``.

    Args:
        run_dir: the run directory.
        window_s: the run's window length (``--window``).
        steady_from_s, steady_to_s: the steady span asked for, epoch seconds.
        spans: further bucket lengths to build series for (windowed SLO checks).
        duration_s: the run's length, to choose the plot span (default: the steady span's).
        max_points: most buckets a plot series may have.

    Returns:
        The totals, steady-state totals and series.

    Raises:
        UsageError: an interval file is missing or unreadable.
    """
    directory = Path(run_dir)
    length = duration_s if duration_s is not None else max(0.0, steady_to_s - steady_from_s)
    span_plot = plot_span(length, window_s, max_points)
    wanted = sorted({span_plot, *spans})
    base = _common_base(wanted, window_s)
    steady_from = math.ceil(round(steady_from_s / base, 9)) * base
    steady_to = max(steady_from, _floor(steady_to_s, base))
    builders = {span: _SpanSeries(span) for span in wanted}
    read = RunRead(
        whole=MetricWindow(steady_from, steady_to),
        steady=MetricWindow(steady_from, steady_to),
        steady_from_s=steady_from,
        steady_to_s=steady_to,
        base_s=base,
        series={},
        plot_span_s=span_plot,
    )
    try:
        with (directory / HLOG_FILE).open(encoding="utf-8") as hlog:
            skipped = [0]
            _fold_histograms(hlog_lines(hlog, skipped), read, builders, base)
            read.skipped_lines += skipped[0]
        with (directory / COUNTS_FILE).open(encoding="utf-8") as counts:
            count_lines = _fold_counts(counts, read, base, wanted)
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"{directory}: cannot read the interval log ({reason})") from exc
    for span in wanted:
        read.series[span] = _assemble(builders[span], count_lines[span], span)
    return read


def _fold_histograms(
    lines: Iterable[tuple[str, float, float, str]],
    read: RunRead,
    builders: dict[float, _SpanSeries],
    base: float,
) -> None:
    buckets: dict[float, MetricWindow] = {}
    ordered = list(builders.values())
    closed_before = -math.inf
    newest = -math.inf

    def close(limit: float) -> None:
        for key in sorted(k for k in buckets if k + base <= limit):
            bucket = buckets.pop(key)
            read.whole.merge(bucket)
            if read.steady_from_s <= key and key + base <= read.steady_to_s:
                read.steady.merge(bucket)
            last = len(ordered) - 1
            for index, builder in enumerate(ordered):
                builder.add(bucket, owned=index == last)
        for builder in builders.values():
            builder.close_before(limit)

    for metric, start, length, blob in lines:
        read.first_start_s = start if read.first_start_s is None else min(read.first_start_s, start)
        end = start + length
        read.last_end_s = end if read.last_end_s is None else max(read.last_end_s, end)
        key = _floor(start, base)
        try:
            if key < closed_before:  # its bucket is gone: keep it in the totals only
                read.late_lines += 1
                late = MetricWindow(start, end)
                late.histograms[metric] = LatencyHistogram.decode(blob.encode("ascii"))
                read.whole.merge(late)
                if read.steady_from_s <= key and key + base <= read.steady_to_s:
                    read.steady.merge(late)
                continue
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = bucket = MetricWindow(key, key + base)
            histogram = bucket.histograms.get(metric)
            if histogram is None:
                bucket.histograms[metric] = histogram = LatencyHistogram()
            histogram.add_blob(blob.encode("ascii"))
        except ValueError:  # a damaged line: add_blob/decode turn hdrh's errors into this
            read.skipped_lines += 1
            continue
        if start > newest:
            newest = start
            limit = _floor(newest - LATENESS_S, base)
            if limit > closed_before:
                close(limit)
                closed_before = limit
    close(math.inf)


@dataclass
class _CountBucket:
    counts: dict[str, int] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, int]] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    saturated: bool = False


def _fold_counts(
    lines: Iterable[str], read: RunRead, base: float, spans: Sequence[float]
) -> dict[float, dict[float, _CountBucket]]:
    per_span: dict[float, dict[float, _CountBucket]] = {span: {} for span in spans}
    saturated: set[float] = set()
    skipped = [0]
    for entry, window in counts_lines(lines, skipped):
        start = window.start_s
        notes = entry.get("notes")
        is_saturated = bool(notes) if notes is not None else _cpu_saturated(window)
        if is_saturated:
            saturated.add(start)
        key = _floor(start, base)
        in_steady = read.steady_from_s <= key and key + base <= read.steady_to_s
        # The window holds no histogram but out-of-range tallies: merging it adds counts,
        # breakdowns, gauges and those tallies (the histograms came from the hlog).
        for target in (read.whole, read.steady) if in_steady else (read.whole,):
            target.merge(window)
        for span, buckets in per_span.items():
            bucket = buckets.setdefault(_floor(start, span), _CountBucket())
            for name, n in window.counts.items():
                bucket.counts[name] = bucket.counts.get(name, 0) + n
            for name, labels in window.breakdowns.items():
                into = bucket.breakdowns.setdefault(name, {})
                for label, n in labels.items():
                    into[label] = into.get(label, 0) + n
            for name in GENERATOR_GAUGES:
                gauge = window.gauges.get(name)
                if gauge is not None:
                    bucket.gauges[name] = max(bucket.gauges.get(name, -math.inf), gauge.last)
            bucket.saturated = bucket.saturated or is_saturated
    read.saturated_windows = sorted(saturated)
    read.skipped_lines += skipped[0]
    return per_span


def _cpu_saturated(window: MetricWindow) -> bool:
    """For runs written before windows carried their saturation notes: CPU alone."""
    from loadtest.metrics.generator_health import CPU_SATURATION_SHARE

    cpu = window.gauges.get("cpu_share")
    return cpu is not None and cpu.last >= CPU_SATURATION_SHARE


def _assemble(
    builder: _SpanSeries, counted: dict[float, _CountBucket], span: float
) -> WindowSeries:
    keys = sorted(set(builder.closed) | set(counted))
    series = WindowSeries(span_s=span, start_s=keys)
    metrics = sorted({m for stats in builder.closed.values() for m in stats})
    for metric in metrics:
        series.percentiles[metric] = {
            stat: [builder.closed.get(k, {}).get(metric, {}).get(stat) for k in keys]
            for stat in SERIES_STATS
        }
    empty = _CountBucket()
    names = sorted({n for b in counted.values() for n in b.counts})
    series.counts = {n: [counted.get(k, empty).counts.get(n, 0) for k in keys] for n in names}
    for name in sorted({n for b in counted.values() for n in b.breakdowns}):
        labels = sorted({label for b in counted.values() for label in b.breakdowns.get(name, {})})
        series.breakdowns[name] = {
            label: [counted.get(k, empty).breakdowns.get(name, {}).get(label, 0) for k in keys]
            for label in labels
        }
    for name in GENERATOR_GAUGES:
        values = [counted.get(k, empty).gauges.get(name) for k in keys]
        if any(v is not None for v in values):
            series.gauges[name] = values
    opened = series.counts.get("connections_opened", [0] * len(keys))
    closed = series.counts.get("connections_closed", [0] * len(keys))
    running = 0
    for up, down in zip(opened, closed, strict=True):
        running += up - down
        series.open_connections.append(running)
    series.saturated = [counted.get(k, empty).saturated for k in keys]
    return series
