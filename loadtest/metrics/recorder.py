"""The hot path's recorder: every sample goes into the window current when it was taken.

``record``/``count``/``gauge`` are O(1) and go into the window that is current *at the moment
of the call*: each call reads the clock and, when the window's end has passed, starts the next
one. Closed windows wait until :meth:`IntervalRecorder.roll` (or
:meth:`~IntervalRecorder.flush` at stop) collects them, so the collector's cadence (Locust
reports every 3 s) never stretches a window. Alignment of windows: :mod:`loadtest.metrics.window`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from loadtest.metrics.window import MetricWindow


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
