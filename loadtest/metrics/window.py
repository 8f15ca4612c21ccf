"""One time window of measurements: histograms, counters and gauges, mergeable and shippable.

A :class:`MetricWindow` holds one time window's histograms, counters (with optional breakdown
labels) and gauges, merges with another window of the same slot, and converts to and from a
plain dict that msgpack carries unchanged, so a Locust worker can ship it to the master in
``report_to_master``. The hot path records into the current window through
:class:`~loadtest.metrics.recorder.IntervalRecorder`;
:class:`~loadtest.metrics.aggregate.RunAggregate` merges the windows of all workers into one per
slot and into run totals.

Windows are aligned to wall-clock multiples of ``window_s`` (``floor(now / window_s) *
window_s``), so that window [10, 11) of every worker — on this machine or another with a
synchronised clock — has the same start and merges into one. ``start_s`` is therefore the slot
start even when recording began mid-slot; ``end_s`` is the slot end, except for a window closed
early by ``flush`` whose ``end_s`` is the flush time. A window holds what was *recorded* in it: a
stream's ``stream_ms`` lands in the window in which the stream completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.catalog import (
    BREAKDOWNS,
    COUNTS,
    GAUGES,
    HISTOGRAM_NAMES,
)
from loadtest.metrics.histogram import LatencyHistogram

WIRE_VERSION = 1
"""Version of :meth:`MetricWindow.to_wire`'s dict; a reader rejects versions it does not know."""

KEY_DECIMALS = 6
"""Window starts are compared after rounding to this many decimals (1 µs), so that float noise
in ``k * window_s`` never splits one slot into two."""


def window_key(start_s: float) -> float:
    """The key under which windows starting at ``start_s`` are merged."""
    return round(start_s, KEY_DECIMALS)


_COUNT_NAMES = frozenset(COUNTS)


@dataclass(slots=True)
class GaugeValue:
    """A gauge in one window: the last value set and the largest.

    Merging two windows keeps the larger of each field: a merged window reports its worst
    worker, which is what generator-saturation checks need.
    """

    last: float
    max: float

    def merge(self, other: GaugeValue) -> None:
        """Keep the larger ``last`` and ``max`` of the two."""
        self.last = max(self.last, other.last)
        self.max = max(self.max, other.max)


class MetricWindow:
    """One time window ``[start_s, end_s)`` of histograms, counters and gauges.

    Args:
        start_s: window start, wall-clock epoch seconds (the slot start; see the module doc).
        end_s: window end, epoch seconds.

    Attributes:
        histograms: metric name → histogram, created on first record.
        counts: counter key → total.
        breakdowns: counter key → label → count, for the keys of
            :data:`~loadtest.metrics.catalog.BREAKDOWNS`.
        gauges: gauge key → :class:`GaugeValue`.
    """

    __slots__ = ("breakdowns", "counts", "end_s", "gauges", "histograms", "start_s")

    def __init__(self, start_s: float, end_s: float) -> None:
        self.start_s = start_s
        self.end_s = end_s
        self.histograms: dict[str, LatencyHistogram] = {}
        self.counts: dict[str, int] = {}
        self.breakdowns: dict[str, dict[str, int]] = {}
        self.gauges: dict[str, GaugeValue] = {}

    def __repr__(self) -> str:
        return (
            f"MetricWindow({self.start_s!r}, {self.end_s!r}, "
            f"histograms={sorted(self.histograms)}, counts={self.counts})"
        )

    # -- recording (hot path) ------------------------------------------------------------

    def record_many(self, metric: str, values_ms: Iterable[float]) -> None:
        """Record several durations of one metric (a stream's chunk gaps) in one call."""
        histogram = self.histograms.get(metric)
        if histogram is None:
            if metric not in HISTOGRAM_NAMES:
                raise ValueError(f"unknown metric {metric!r}; known: {sorted(HISTOGRAM_NAMES)}")
            histogram = self.histograms[metric] = LatencyHistogram()
        histogram.record_many_ms(values_ms)

    def record(self, metric: str, value_ms: float) -> None:
        """Record one duration into ``metric``'s histogram.

        Args:
            metric: a name from :data:`~loadtest.metrics.catalog.HISTOGRAM_NAMES`.
            value_ms: the duration, ms (see :meth:`LatencyHistogram.record_ms`).

        Raises:
            ValueError: unknown metric name (checked only when the histogram is created, so
                the hot path pays nothing), or ``value_ms`` is NaN.
        """
        histogram = self.histograms.get(metric)
        if histogram is None:
            if metric not in HISTOGRAM_NAMES:
                raise ValueError(f"unknown metric {metric!r}; known: {sorted(HISTOGRAM_NAMES)}")
            histogram = self.histograms[metric] = LatencyHistogram()
        histogram.record_ms(value_ms)

    def count(self, key: str, n: int = 1, by: str | int | None = None) -> None:
        """Add ``n`` to counter ``key`` and, with ``by``, to that label of its breakdown.

        Args:
            key: a name from :data:`~loadtest.metrics.catalog.COUNTS`.
            n: the increment.
            by: breakdown label (e.g. ``"401"``, ``1006``, ``"cross_talk"``); stored as a
                string so that JSON and msgpack round trips keep it equal.

        Raises:
            ValueError: unknown counter, or ``by`` given for a counter without a breakdown.
        """
        total = self.counts.get(key)
        if total is None:
            if key not in _COUNT_NAMES:
                raise ValueError(f"unknown counter {key!r}; known: {list(COUNTS)}")
            total = 0
        self.counts[key] = total + n
        if by is not None:
            labels = self.breakdowns.get(key)
            if labels is None:
                if key not in BREAKDOWNS:
                    raise ValueError(
                        f"counter {key!r} has no breakdown; these do: {list(BREAKDOWNS)}"
                    )
                labels = self.breakdowns[key] = {}
            label = str(by)
            labels[label] = labels.get(label, 0) + n

    def gauge(self, key: str, value: float) -> None:
        """Set gauge ``key``: the window keeps the last value and the largest.

        Args:
            key: a name from :data:`~loadtest.metrics.catalog.GAUGES`.
            value: the reading.

        Raises:
            ValueError: unknown gauge.
        """
        current = self.gauges.get(key)
        if current is None:
            if key not in GAUGES:
                raise ValueError(f"unknown gauge {key!r}; known: {list(GAUGES)}")
            self.gauges[key] = GaugeValue(value, value)
        else:
            current.last = value
            if value > current.max:
                current.max = value

    @property
    def is_empty(self) -> bool:
        """True when nothing at all was recorded, counted or gauged."""
        return not (self.histograms or self.counts or self.gauges)

    # -- combining -----------------------------------------------------------------------

    def merge(self, other: MetricWindow) -> None:
        """Add ``other`` into this window (``other`` is unchanged).

        Histograms and counters add; gauges keep the larger values; the span becomes the union
        ``[min(starts), max(ends))``. Names are not checked, so windows from a newer worker
        with extra keys still merge.

        Args:
            other: the window to add, typically the same slot from another worker.
        """
        self.start_s = min(self.start_s, other.start_s)
        self.end_s = max(self.end_s, other.end_s)
        for metric, histogram in other.histograms.items():
            mine = self.histograms.get(metric)
            if mine is None:
                self.histograms[metric] = histogram.copy()
            else:
                mine.merge(histogram)
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        for key, labels in other.breakdowns.items():
            mine_labels = self.breakdowns.setdefault(key, {})
            for label, n in labels.items():
                mine_labels[label] = mine_labels.get(label, 0) + n
        for key, value in other.gauges.items():
            mine_gauge = self.gauges.get(key)
            if mine_gauge is None:
                self.gauges[key] = GaugeValue(value.last, value.max)
            else:
                mine_gauge.merge(value)

    def copy(self) -> MetricWindow:
        """An independent copy (histograms included)."""
        clone = MetricWindow(self.start_s, self.end_s)
        clone.merge(self)
        return clone

    # -- wire format ---------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """A dict of plain types (str, int, float, bytes, dict) that msgpack and pickle carry.

        Returns:
            ``{"v": 1, "start_s", "end_s", "histograms": {metric: bytes}, "counts": {key: int},
            "breakdowns": {key: {label: int}}, "gauges": {key: {"last", "max"}}}``; histogram
            bytes are :meth:`LatencyHistogram.encode` (out-of-range count included).
        """
        return {
            "v": WIRE_VERSION,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "histograms": {m: h.encode() for m, h in self.histograms.items()},
            "counts": dict(self.counts),
            "breakdowns": {k: dict(v) for k, v in self.breakdowns.items()},
            "gauges": {k: {"last": g.last, "max": g.max} for k, g in self.gauges.items()},
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> MetricWindow:
        """Rebuild a window from :meth:`to_wire`'s dict.

        Args:
            data: the dict, possibly after msgpack (which may hand back str keys as str and
                bytes as bytes; both are accepted).

        Returns:
            The window.

        Raises:
            ValueError: unknown wire version, or a histogram that does not decode.
        """
        version = data.get("v")
        if version != WIRE_VERSION:
            raise ValueError(f"unsupported metric window wire version {version!r}")
        window = cls(float(data["start_s"]), float(data["end_s"]))
        for metric, blob in data.get("histograms", {}).items():
            window.histograms[str(metric)] = LatencyHistogram.decode(blob)
        window.counts = {str(k): int(v) for k, v in data.get("counts", {}).items()}
        window.breakdowns = {
            str(k): {str(label): int(n) for label, n in v.items()}
            for k, v in data.get("breakdowns", {}).items()
        }
        window.gauges = {
            str(k): GaugeValue(float(v["last"]), float(v["max"]))
            for k, v in data.get("gauges", {}).items()
        }
        return window

    # -- reading -------------------------------------------------------------------------

    def out_of_range(self) -> dict[str, int]:
        """Metric → samples recorded clamped because they lay outside [0 ms, 1 h]."""
        return {m: h.out_of_range for m, h in self.histograms.items()}

    def summary(self) -> dict[str, Any]:
        """This window's numbers, as recorded (no zero-filling).

        Returns:
            ``{"start_s", "end_s", "metrics": {metric: summary_ms()}, "counts", "breakdowns":
            {key: {map_name: {label: n}}}, "gauges": {key: {"last", "max"}}, "out_of_range"}``.
        """
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "metrics": {m: self.histograms[m].summary_ms() for m in sorted(self.histograms)},
            "counts": dict(self.counts),
            "breakdowns": shape_breakdowns(self.breakdowns, fill=False),
            "gauges": {k: {"last": g.last, "max": g.max} for k, g in self.gauges.items()},
            "out_of_range": self.out_of_range(),
        }


def shape_breakdowns(
    breakdowns: Mapping[str, Mapping[str, int]], *, fill: bool
) -> dict[str, dict[str, dict[str, int]]]:
    """``{key: {label: n}}`` → ``{key: {map_name: {label: n}}}``, labels sorted."""
    keys = list(BREAKDOWNS) if fill else []
    keys += [k for k in breakdowns if k not in keys]
    shaped = {}
    for key in keys:
        labels = breakdowns.get(key, {})
        map_name = BREAKDOWNS.get(key, "by")
        shaped[key] = {map_name: {label: labels[label] for label in sorted(labels)}}
    return shaped
