"""Measurement: exact histograms per time window, mergeable across Locust workers, on disk.

- :mod:`~loadtest.metrics.histogram` — one latency distribution (HdrHistogram, µs, 3 digits).
- :mod:`~loadtest.metrics.catalog` — every metric, counter and gauge name.
- :mod:`~loadtest.metrics.window` — one time window, mergeable and shippable to the master.
- :mod:`~loadtest.metrics.recorder` — the hot path records into the current window.
- :mod:`~loadtest.metrics.aggregate` — all windows of a run, merged per slot and in totals.
- :mod:`~loadtest.metrics.interval_log` — windows on disk and back (``intervals.*``).
- :mod:`~loadtest.metrics.stream_rows` — one row per stream (``streams.csv``).
- :mod:`~loadtest.metrics.generator_health` — is the load generator the bottleneck?

Nothing here imports Locust; gevent is imported only when health sampling starts and pandas
only when rows are read, so analysis code can use every reader. Definitions: docs/metrics.md.
"""

from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.recorder import IntervalRecorder
from loadtest.metrics.window import MetricWindow

__all__ = ["IntervalRecorder", "LatencyHistogram", "MetricWindow", "RunAggregate"]
