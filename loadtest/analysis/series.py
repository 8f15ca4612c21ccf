"""What a run looked like over time: per-bucket values read from its interval files.

A :class:`WindowSeries` is the shape that plots and windowed SLO checks read. Buckets are
``span_s`` long, aligned to multiples of ``span_s`` in epoch seconds; every list has one entry
per bucket, oldest first, and a bucket with no data for a metric holds ``None`` (percentiles)
or 0 (counts). Percentiles are those of the bucket's merged histogram (exact to HdrHistogram's
3 significant digits), never an average of per-window percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Percentile fields a series carries per latency metric (and ``count``, ``max``).
SERIES_STATS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "min", "mean", "max", "count")


@dataclass
class WindowSeries:
    """Per-bucket values of one run.

    Attributes:
        span_s: bucket length in seconds.
        start_s: bucket starts, epoch seconds.
        percentiles: metric → stat (see :data:`SERIES_STATS`) → per-bucket value (ms; ``count``
            is an int) or ``None`` when the bucket has no sample of that metric.
        counts: count key (``streams_completed`` …) → per-bucket sum.
        breakdowns: count key → label → per-bucket sum (``connection_failures`` by status …).
        gauges: gauge (``cpu_share``, ``rss_mb``) → per-bucket max of the windows' ``last``
            values, ``None`` when unsampled.
        open_connections: connections open at each bucket's end (opened − closed, cumulated
            from the start of the run).
        saturated: whether any window of the bucket had the generator saturated.
    """

    span_s: float
    start_s: list[float] = field(default_factory=list)
    percentiles: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    gauges: dict[str, list[float | None]] = field(default_factory=dict)
    open_connections: list[int] = field(default_factory=list)
    saturated: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.start_s)
