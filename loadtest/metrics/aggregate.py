"""A run's windows from every worker, merged per time slot and into run totals.

Windows arrive from any number of workers, in any order, sometimes twice for one slot (a
worker's flushed partial window and its continuation); :class:`RunAggregate` merges them, seals
those no more data can reach (the caller writes them out), and shapes the totals like
summary.json (:func:`totals_summary`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtest.metrics.catalog import COUNTS, GENERATOR_METRICS, METRICS
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.window import GaugeValue, MetricWindow, shape_breakdowns, window_key


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
        "breakdowns": shape_breakdowns(totals.breakdowns, fill=True),
        "out_of_range": out_of_range,
    }
