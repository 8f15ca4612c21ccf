"""Time windows of measurements: record into one, close it on time, merge them across workers.

Three pieces, from the hot path outwards:

- :class:`MetricWindow` holds one time window's histograms, counters (with optional breakdown
  labels) and gauges, and converts to and from a plain dict that msgpack carries unchanged,
  so a Locust worker can ship it to the master in ``report_to_master``.
- :class:`IntervalRecorder` is what the hot path calls. ``record``/``count``/``gauge`` are O(1)
  and go into the window that is current *at the moment of the call*: each call reads the clock
  and, when the window's end has passed, starts the next one. Closed windows wait until
  :meth:`IntervalRecorder.roll` (or :meth:`~IntervalRecorder.flush` at stop) collects them, so
  the collector's cadence (Locust reports every 3 s) never stretches a window.
- :class:`RunAggregate` merges windows from any number of workers, arriving in any order, into
  one window per time slot and into run totals, and shapes the totals like summary.json.

Windows are aligned to wall-clock multiples of ``window_s`` (``floor(now / window_s) *
window_s``), so that window [10, 11) of every worker — on this machine or another with a
synchronised clock — has the same start and merges into one. ``start_s`` is therefore the slot
start even when recording began mid-slot; ``end_s`` is the slot end, except for a window closed
early by ``flush`` whose ``end_s`` is the flush time. A window holds what was *recorded* in it: a
stream's ``stream_ms`` lands in the window in which the stream completed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.catalog import (
    BREAKDOWNS,
    COUNTS,
    GAUGES,
    GENERATOR_METRICS,
    HISTOGRAM_NAMES,
    METRICS,
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
            "breakdowns": _shape_breakdowns(self.breakdowns, fill=False),
            "gauges": {k: {"last": g.last, "max": g.max} for k, g in self.gauges.items()},
            "out_of_range": self.out_of_range(),
        }


def _shape_breakdowns(
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


class IntervalRecorder:
    """Records into the current time window; hands closed windows to whoever collects them.

    Not thread-safe, and needs no lock under gevent: no method yields.

    Args:
        window_s: window length in seconds (default 1).
        clock: wall-clock seconds since the epoch (default :func:`time.time`); injectable so
            tests can drive time. Wall clock, not monotonic, because windows of different
            processes must line up by start.

    Raises:
        ValueError: ``window_s`` is not positive.
    """

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s!r}")
        self._window_s = float(window_s)
        self._clock = clock
        self._window: MetricWindow | None = None
        self._end_s = -math.inf  # end of the current window; -inf: no current window
        self._closed: list[MetricWindow] = []

    @property
    def window_s(self) -> float:
        """Window length, seconds."""
        return self._window_s

    @property
    def current_start_s(self) -> float | None:
        """Start of the window now being recorded into, or None before the first record."""
        return None if self._window is None else self._window.start_s

    def slot_start(self, now: float) -> float:
        """The aligned start of the slot containing ``now``."""
        return math.floor(now / self._window_s) * self._window_s

    # -- hot path ------------------------------------------------------------------------

    def _current(self) -> MetricWindow:
        now = self._clock()
        window = self._window
        if window is None or now >= self._end_s:
            self._close_current()
            start = self.slot_start(now)
            window = self._window = MetricWindow(start, start + self._window_s)
            self._end_s = window.end_s
        return window

    def record(self, metric: str, value_ms: float) -> None:
        """Record one duration into the current window (see :meth:`MetricWindow.record`)."""
        self._current().record(metric, value_ms)

    def record_many(self, metric: str, values_ms: Iterable[float]) -> None:
        """Record several values into the current window with one window lookup."""
        self._current().record_many(metric, values_ms)

    def count(self, key: str, n: int = 1, by: str | int | None = None) -> None:
        """Count into the current window (see :meth:`MetricWindow.count`)."""
        self._current().count(key, n, by)

    def gauge(self, key: str, value: float) -> None:
        """Set a gauge in the current window (see :meth:`MetricWindow.gauge`)."""
        self._current().gauge(key, value)

    # -- collection ----------------------------------------------------------------------

    def _close_current(self, end_s: float | None = None) -> None:
        window = self._window
        if window is not None and not window.is_empty:
            if end_s is not None and end_s < window.end_s:
                window.end_s = max(end_s, window.start_s)
            self._closed.append(window)
        self._window = None
        self._end_s = -math.inf

    def roll(self, now: float | None = None) -> list[MetricWindow]:
        """Collect every window whose end has passed.

        Args:
            now: the current time (default: the clock).

        Returns:
            Closed, non-empty windows, oldest first. Slots in which nothing was recorded are
            never materialised, so they are absent rather than emitted empty.
        """
        if now is None:
            now = self._clock()
        if now >= self._end_s:
            self._close_current()
        closed, self._closed = self._closed, []
        return closed

    def flush(self, now: float | None = None) -> list[MetricWindow]:
        """Close the current window now, even part-way, and collect everything closed.

        Call it at stop, so the final partial window is never lost. Recording may continue
        afterwards; it starts a new window for the same slot, which merges with this one.

        Args:
            now: the flush time (default: the clock); becomes the partial window's ``end_s``.

        Returns:
            Closed, non-empty windows, oldest first.
        """
        if now is None:
            now = self._clock()
        self._close_current(end_s=now)
        closed, self._closed = self._closed, []
        return closed


@dataclass(frozen=True, slots=True)
class WindowDigest:
    """What a run keeps in memory of a window once it is sealed (written out and dropped).

    A window's histograms cost ~190 KiB each in memory; a day-long soak has 86,400 windows.
    So the aggregate keeps whole windows only until no more data can arrive for them, and
    then only this: the gauges and the verdicts a caller asked for (``notes``).
    """

    start_s: float
    end_s: float
    gauges: Mapping[str, GaugeValue]
    notes: tuple[str, ...] = ()


class RunAggregate:
    """All windows of a run, merged per time slot and into run totals.

    Windows may come from any number of workers, in any order, more than once per slot (a
    worker's flushed partial window and its continuation); windows with the same start merge.
    Windows are copied on :meth:`add` (unless told otherwise), so callers may reuse theirs.
    """

    def __init__(self, *, keep_digests: bool = True) -> None:
        """Args:
        keep_digests: keep a :class:`WindowDigest` of each sealed window. A load generator
            whose summary is built from the files afterwards does not need them, and over
            a day-long soak they would add up (one per window).
        """
        self._slots: dict[float, MetricWindow] = {}
        self._sealed: dict[float, WindowDigest] = {}
        self._keep_digests = keep_digests
        self._totals: MetricWindow | None = None

    def add(self, window: MetricWindow, *, copy: bool = True) -> None:
        """Merge one window into its slot and into the totals.

        Args:
            window: the window; empty windows are ignored.
            copy: False hands the window over to the aggregate, which may then keep and
                mutate it (saves a copy when the caller built it just for this call).
        """
        if window.is_empty:
            return
        key = window_key(window.start_s)
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = window.copy() if copy else window
        else:
            slot.merge(window)
        if self._totals is None:
            self._totals = window.copy()
        else:
            self._totals.merge(window)

    def seal(
        self,
        before_s: float = math.inf,
        notes: Callable[[MetricWindow], Iterable[str]] | None = None,
    ) -> list[MetricWindow]:
        """Take the merged windows that ended at or before ``before_s`` out of memory.

        The caller writes them to disk; the aggregate keeps a :class:`WindowDigest` of each
        and its totals. A window arriving later for a sealed slot still counts in the totals
        and is returned by the next ``seal`` on its own (the interval log sums duplicates).

        Args:
            before_s: seal windows whose ``end_s`` is at most this (default: all).
            notes: computes the digest's ``notes`` (e.g. generator saturation reasons).

        Returns:
            The sealed windows, oldest first.
        """
        keys = sorted(k for k, w in self._slots.items() if w.end_s <= before_s)
        sealed = [self._slots.pop(key) for key in keys]
        if not self._keep_digests:
            return sealed
        for key, window in zip(keys, sealed, strict=True):
            digest = WindowDigest(
                window.start_s,
                window.end_s,
                dict(window.gauges),
                tuple(notes(window)) if notes is not None else (),
            )
            earlier = self._sealed.get(key)
            if earlier is not None:  # a straggler: keep both verdicts
                merged_gauges = dict(earlier.gauges)
                for name, gauge in digest.gauges.items():
                    if name in merged_gauges:
                        merged = GaugeValue(merged_gauges[name].last, merged_gauges[name].max)
                        merged.merge(gauge)
                        merged_gauges[name] = merged
                    else:
                        merged_gauges[name] = gauge
                digest = WindowDigest(
                    earlier.start_s,
                    max(earlier.end_s, digest.end_s),
                    merged_gauges,
                    earlier.notes + digest.notes,
                )
            self._sealed[key] = digest
        return sealed

    def digests(self) -> list[WindowDigest]:
        """Digests of the sealed windows, oldest first."""
        return [self._sealed[key] for key in sorted(self._sealed)]

    def add_all(self, windows: Iterable[MetricWindow]) -> None:
        """:meth:`add` each window."""
        for window in windows:
            self.add(window)

    def add_wire(self, data: Mapping[str, Any]) -> None:
        """:meth:`add` a window received as :meth:`MetricWindow.to_wire`'s dict."""
        self.add(MetricWindow.from_wire(data))

    def windows(self) -> list[MetricWindow]:
        """The merged windows not yet sealed, oldest first (the aggregate's own objects: do
        not mutate)."""
        return [self._slots[key] for key in sorted(self._slots)]

    def window(self, start_s: float) -> MetricWindow | None:
        """The merged window starting at ``start_s``, if any."""
        return self._slots.get(window_key(start_s))

    def between(self, start_s: float, end_s: float) -> MetricWindow:
        """Merge the windows whose start lies in ``[start_s, end_s)`` into a new window.

        Args:
            start_s: range start, epoch seconds.
            end_s: range end, epoch seconds.

        Returns:
            A new window spanning the range (empty when no window starts in it).
        """
        merged = MetricWindow(start_s, end_s)
        chosen = [w for w in self.windows() if start_s <= w.start_s < end_s]
        if chosen:
            merged.start_s, merged.end_s = chosen[0].start_s, chosen[0].end_s
        for window in chosen:
            merged.merge(window)
        return merged

    @property
    def totals(self) -> MetricWindow:
        """Every window merged: the whole run (an empty window at 0 before any add)."""
        return self._totals if self._totals is not None else MetricWindow(0.0, 0.0)

    def totals_summary(self) -> dict[str, Any]:
        """The run totals shaped for summary.json.

        Returns:
            ``{"metrics": {...}, "counts": {...}, "breakdowns": {...}, "out_of_range": {...}}``:

            - ``metrics``: every key of :data:`~loadtest.metrics.catalog.METRICS`, always (an
              unrecorded metric has ``count`` 0 and 0.0 elsewhere), plus any other recorded
              metric except generator-health ones, each a :meth:`LatencyHistogram.summary_ms`.
            - ``counts``: every key of :data:`~loadtest.metrics.catalog.COUNTS` (0 when never
              counted) plus any other counted key, each a plain int.
            - ``breakdowns``: every key of :data:`~loadtest.metrics.catalog.BREAKDOWNS` →
              ``{map_name: {label: n}}``, e.g. ``{"connection_failures": {"by_status":
              {"401": 2, "timeout": 1}}}``; labels sorted.
            - ``out_of_range``: for each key of ``metrics``, samples clamped into range.
        """
        return totals_summary(self.totals)


def totals_summary(totals: MetricWindow) -> dict[str, Any]:
    """A merged window shaped for summary.json (see :meth:`RunAggregate.totals_summary`)."""
    metric_names = list(METRICS) + sorted(
        m for m in totals.histograms if m not in METRICS and m not in GENERATOR_METRICS
    )
    empty = LatencyHistogram()
    metrics = {m: totals.histograms.get(m, empty).summary_ms() for m in metric_names}
    counts = {key: totals.counts.get(key, 0) for key in COUNTS}
    counts |= {k: n for k, n in sorted(totals.counts.items()) if k not in counts}
    out_of_range = {m: totals.histograms.get(m, empty).out_of_range for m in metric_names}
    return {
        "metrics": metrics,
        "counts": counts,
        "breakdowns": _shape_breakdowns(totals.breakdowns, fill=True),
        "out_of_range": out_of_range,
    }
