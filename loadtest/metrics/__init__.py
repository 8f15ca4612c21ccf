"""Measurement: exact histograms per time window, mergeable across Locust workers, on disk.

- :mod:`~loadtest.metrics.histogram` — one latency distribution (HdrHistogram, µs, 3 digits).
- :mod:`~loadtest.metrics.catalog` — every metric, counter and gauge name.
- :mod:`~loadtest.metrics.window` — time windows, the hot-path recorder, the run aggregate.
- :mod:`~loadtest.metrics.interval_log` — windows on disk and back (``intervals.*``).
- :mod:`~loadtest.metrics.stream_rows` — one row per stream (``streams.csv``).
- :mod:`~loadtest.metrics.generator_health` — is the load generator the bottleneck?

Nothing here imports Locust; gevent is imported only when health sampling starts and pandas
only when rows are read, so analysis code can use every reader. Definitions: docs/metrics.md.
"""

from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.window import IntervalRecorder, MetricWindow, RunAggregate

__all__ = ["IntervalRecorder", "LatencyHistogram", "MetricWindow", "RunAggregate"]
