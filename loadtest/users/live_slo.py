"""``abort_on_fail``: judge each windowed SLO check while the run goes, stop at the first loss.

The collector hands every sealed window (merged across workers) to :class:`LiveJudge`, which
merges them into buckets of each windowed check's span and, once a bucket can receive no
more, judges it with the same :func:`loadtest.analysis.slo.evaluate` the report uses, so a
run stopped here fails the same check in its report. Buckets before the steady state (the
ramp and ``--warmup``) are not judged, as in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from loadtest.analysis.series import SERIES_STATS, WindowSeries
from loadtest.analysis.slo import evaluate
from loadtest.analysis.slo_spec import SloSpec
from loadtest.metrics.window import MetricWindow


class LiveJudge:
    """Args:
    spec: the run's SLO file (only its windowed checks are judged here).
    steady_from: when the steady state starts (epoch seconds), ``None`` while ramping.
    on_fail: called once, with the failed check's result, at the first lost bucket.
    """

    def __init__(
        self,
        spec: SloSpec,
        steady_from: Callable[[], float | None],
        on_fail: Callable[[dict[str, Any]], None],
    ) -> None:
        self._specs = {
            span: replace(spec, checks=tuple(c for c in spec.checks if c.over_s == span))
            for span in spec.window_spans()
        }
        self._steady_from = steady_from
        self._on_fail = on_fail
        self._buckets: dict[float, dict[float, MetricWindow]] = {s: {} for s in self._specs}
        self.failed: dict[str, Any] | None = None

    def add(self, window: MetricWindow) -> None:
        """A sealed window: merge it into its bucket of every span."""
        for span, buckets in self._buckets.items():
            key = math.floor(round(window.start_s / span, 9)) * span
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = bucket = MetricWindow(key, key + span)
            bucket.merge(window)

    def close_before(self, limit_s: float) -> None:
        """Judge (and forget) every bucket that ended at or before ``limit_s``."""
        for span, buckets in self._buckets.items():
            for key in sorted(k for k in buckets if k + span <= limit_s):
                bucket = buckets.pop(key)
                if self.failed is None:
                    self._judge(span, bucket)

    def _judge(self, span: float, bucket: MetricWindow) -> None:
        steady_from = self._steady_from()
        if steady_from is None or bucket.start_s < steady_from:
            return
        series = WindowSeries(span_s=span, start_s=[bucket.start_s])
        for metric, histogram in bucket.histograms.items():
            stats = histogram.summary_ms() if histogram.count else {}
            series.percentiles[metric] = {stat: [stats.get(stat)] for stat in SERIES_STATS}
        series.counts = {name: [n] for name, n in bucket.counts.items()}
        summary = {"steady_state": {"from_s": bucket.start_s, "to_s": bucket.end_s}}
        for result in evaluate(self._specs[span], summary, {span: series}):
            if result["verdict"] == "fail":
                self.failed = result
                self._on_fail(result)
                return
