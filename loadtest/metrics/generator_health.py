"""Is the load generator itself the bottleneck? Event-loop lag and CPU share, per window.

A saturated generator reports its own queueing as server latency: when a Locust process runs
out of CPU, chunks sit in socket buffers until a greenlet gets round to reading them, and every
latency of that window grows by the wait. Measured on our 2-core machines (FINDINGS.md): above
~90 % CPU the latency figures are meaningless, and 50 ms of CPU work every 200 ms raised p99 by
~50 ms. So each window records two things about the generator process:

- ``loop_lag_ms`` (histogram): a greenlet sleeps ``tick_s`` (0.1 s) over and over and records
  how much later than asked it woke. Any greenlet that hogs the loop delays it, exactly as it
  delays the readers of every socket.
- ``cpu_share`` (gauge): process CPU time (user + system, :func:`time.process_time`) over wall
  time. 1.0 is one core saturated, which for a gevent process is all it can use. The gauge's
  ``last`` value covers the whole window (from the last tick of the previous window to the
  last tick of this one); its ``max`` also includes short spans at the start of a window and
  is noisy, so saturation is judged on ``last``.

A window is **saturated** when ``cpu_share`` ≥ :data:`CPU_SATURATION_SHARE` (0.90) or the p99
of ``loop_lag_ms`` ≥ :data:`LOOP_LAG_SATURATION_P99_MS` (50 ms). With 10 ticks per second, p99
of one worker's window is its worst tick. Across workers gauges merge by maximum (the worst
worker) and lag histograms pool. A loop blocked for longer than a window records nothing until
it wakes; the window it wakes in records the whole delay and is flagged.

gevent is imported only when sampling starts, so analysis code can import
:func:`saturated_windows` without pulling in gevent.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from loadtest.metrics.window import MetricWindow

if TYPE_CHECKING:
    from gevent import Greenlet

CPU_SATURATION_SHARE = 0.90
"""A window whose generator CPU share reaches this is saturated (1.0 = one core)."""

LOOP_LAG_SATURATION_P99_MS = 50.0
"""A window whose event-loop lag p99 reaches this (ms) is saturated."""

DEFAULT_TICK_S = 0.1
"""How often the sampler wakes, seconds."""

LOOP_LAG_METRIC = "loop_lag_ms"
GC_PAUSE_METRIC = "gc_pause_ms"
#: A garbage-collector pause this long stalls every greenlet: latencies in its window carry it.
GC_PAUSE_SATURATION_MS = 20.0
CPU_SHARE_GAUGE = "cpu_share"
RSS_GAUGE = "rss_mb"
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HealthSink(Protocol):
    """Where samples go: an :class:`~loadtest.metrics.recorder.IntervalRecorder` fits."""

    def record(self, metric: str, value_ms: float) -> None:
        """Record a duration into the current window."""

    def gauge(self, key: str, value: float) -> None:
        """Set a gauge in the current window."""

    @property
    def current_start_s(self) -> float | None:
        """Start of the current window (None before the first record)."""


class GeneratorHealth:
    """Samples the event-loop lag and CPU share of this process into a sink.

    Args:
        sink: where to record; usually the same recorder as the latencies, so both land in
            the same windows.
        tick_s: sampling period, seconds.
        clock: monotonic seconds, for lag (default :func:`time.perf_counter`).
        cpu_clock: process CPU seconds (default :func:`time.process_time`).

    Raises:
        ValueError: ``tick_s`` is not positive.
    """

    def __init__(
        self,
        sink: HealthSink,
        tick_s: float = DEFAULT_TICK_S,
        *,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        if not tick_s > 0:
            raise ValueError(f"tick_s must be positive, got {tick_s!r}")
        self._sink = sink
        self._tick_s = tick_s
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._greenlet: Greenlet | None = None
        self._gc_started: float | None = None
        self._window_start: float | None = None
        self._previous = (clock(), cpu_clock())  # (wall, cpu) at the last tick
        self._mark = self._previous  # (wall, cpu) the current window's share is measured from

    @property
    def running(self) -> bool:
        """True while the sampling greenlet is alive."""
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> Greenlet:
        """Start sampling in a greenlet.

        Returns:
            The sampling greenlet (the running one, when already started), so an owner that
            manages greenlets can kill it with the rest; :meth:`stop` does that too.
        """
        import gevent

        if self._greenlet is not None and not self._greenlet.dead:
            return self._greenlet
        self._previous = self._mark = (self._clock(), self._cpu_clock())
        self._window_start = None
        self._greenlet = gevent.spawn(self._run)
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        return self._greenlet

    def stop(self) -> None:
        """Stop sampling, and gauge the CPU share of the span since the last tick so the
        final partial window has one too."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
            self._gauge_cpu(self._clock(), self._cpu_clock())

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Time every garbage collection exactly: a sampled loop lag can miss a 60 ms pause
        that falls between two ticks, and such a pause is in every latency it overlaps."""
        if phase == "start":
            self._gc_started = self._clock()
        elif self._gc_started is not None:
            self._sink.record(GC_PAUSE_METRIC, (self._clock() - self._gc_started) * 1000.0)
            self._gc_started = None

    def _run(self) -> None:
        import gevent

        while True:
            before = self._clock()
            gevent.sleep(self._tick_s)
            woke = self._clock()
            self.observe(woke - before, woke, self._cpu_clock())

    def observe(self, slept_s: float, wall_s: float, cpu_s: float) -> None:
        """Take one sample (the sampling greenlet calls this after each sleep).

        Args:
            slept_s: how long the ``tick_s`` sleep really took, seconds.
            wall_s: the monotonic clock now.
            cpu_s: the process CPU clock now.
        """
        self._sink.record(LOOP_LAG_METRIC, max(0.0, (slept_s - self._tick_s) * 1000.0))
        self._gauge_cpu(wall_s, cpu_s)
        rss = resident_mb()
        if rss is not None:
            self._sink.gauge(RSS_GAUGE, rss)

    def _gauge_cpu(self, wall_s: float, cpu_s: float) -> None:
        window_start = self._sink.current_start_s
        if window_start != self._window_start:
            # A new window: measure from the previous tick, so no span is left uncounted.
            self._window_start = window_start
            self._mark = self._previous
        mark_wall, mark_cpu = self._mark
        if wall_s > mark_wall:
            self._sink.gauge(CPU_SHARE_GAUGE, (cpu_s - mark_cpu) / (wall_s - mark_wall))
        self._previous = (wall_s, cpu_s)


def resident_mb() -> float | None:
    """This process's resident memory in MiB (Linux ``/proc``; ``None`` elsewhere).

    Read every tick (~10 µs) so soak runs can trend memory per window: the window minimum
    removes the garbage collector's sawtooth.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * _PAGE_BYTES / 2**20


def saturation_reasons(window: MetricWindow) -> list[str]:
    """Why a window's latencies include the generator's own queueing, if they do.

    Args:
        window: a (merged) window.

    Returns:
        One short phrase per threshold crossed, e.g. ``["cpu_share 0.97 >= 0.90"]``; empty
        when the window is healthy or has no generator-health samples.
    """
    reasons = []
    cpu = window.gauges.get(CPU_SHARE_GAUGE)
    if cpu is not None and cpu.last >= CPU_SATURATION_SHARE:
        reasons.append(f"cpu_share {cpu.last:.2f} >= {CPU_SATURATION_SHARE:.2f}")
    pauses = window.histograms.get(GC_PAUSE_METRIC)
    if pauses is not None and pauses.count:
        longest = pauses.summary_ms()["max"]
        if longest >= GC_PAUSE_SATURATION_MS:
            reasons.append(f"gc pause {longest:.1f} ms >= {GC_PAUSE_SATURATION_MS:.0f}")
    lag = window.histograms.get(LOOP_LAG_METRIC)
    if lag is not None and lag.count:
        p99 = lag.summary_ms()["p99"]
        if p99 >= LOOP_LAG_SATURATION_P99_MS:
            reasons.append(f"loop_lag_ms p99 {p99:.1f} >= {LOOP_LAG_SATURATION_P99_MS:.0f}")
    return reasons
