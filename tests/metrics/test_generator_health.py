
"""Generator health: a generator that burns its CPU is flagged, an idle one is not."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gevent
import pytest

from loadtest.analysis.summary import build_summary
from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.generator_health import (
    CPU_SATURATION_SHARE,
    GeneratorHealth,
    saturation_reasons,
)
from loadtest.metrics.interval_log import IntervalLogWriter
from loadtest.metrics.recorder import IntervalRecorder
from loadtest.metrics.window import MetricWindow

WINDOW_S = 0.1  # short windows keep the tests fast; 10 ticks of 10 ms in each


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hog_the_loop(seconds: float) -> None:
    """Compute without yielding, as a heavy computation inside a Locust process would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def saturate_the_cpu(seconds: float) -> None:
    """Keep the CPU busy but yield every 2 ms, as many busy user greenlets would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        hog_the_loop(0.002)
        gevent.sleep(0)


@dataclass
class SampledRun:
    aggregate: RunAggregate
    load_started: float  # wall clock
    load_ended: float
    load_cpu_share: float  # the CPU share the process really got during the load

    def idle_windows(self) -> list[MetricWindow]:
        """Whole windows of the idle lead-in (not the first, whose span starts at start())."""
        return [w for w in self.aggregate.windows()[1:] if w.end_s <= self.load_started]


def sampled_run(load: Callable[[float], None], seconds: float) -> SampledRun:
    """Sample 0.25 s idle, then ``seconds`` of ``load``, then a little idle again."""
    recorder = IntervalRecorder(window_s=WINDOW_S)
    health = GeneratorHealth(recorder, tick_s=0.01)
    greenlet = health.start()
    assert health.start() is greenlet and health.running
    gevent.sleep(0.25)
    load_started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    load(seconds)
    load_cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    load_ended = time.time()
    gevent.sleep(0.05)
    health.stop()
    aggregate = RunAggregate()
    aggregate.add_all(recorder.flush())
    return SampledRun(aggregate, load_started, load_ended, load_cpu_share)


def generator_of(windows: list[MetricWindow], run_dir: Path) -> dict:
    """The summary's ``generator`` section for these windows, written as a run writes them
    (each with its saturation notes, judged at seal time) and read back as a report does."""
    first = min((w.start_s for w in windows), default=0.0)
    last = max((w.end_s for w in windows), default=1.0)
    with IntervalLogWriter(run_dir, start_time_s=first) as log:
        for window in windows:
            log.write(window, notes=saturation_reasons(window))
    (run_dir / "run.json").write_text(json.dumps({
        "options": {"window": WINDOW_S},
        "load": {"started_s": first, "stopped_s": last, "spawning_complete_s": first,
                 "window_s": WINDOW_S},
    }))  # fmt: skip
    return build_summary(run_dir)["generator"]


def worst_loop_lag_ms(window: MetricWindow) -> float:
    lag = window.histograms.get("loop_lag_ms")
    return lag.summary_ms()["max"] if lag is not None else 0.0


def test_burning_cpu_without_yielding_flags_the_window_the_loop_wakes_in(tmp_path: Path) -> None:
    run = sampled_run(hog_the_loop, 0.3)

    # The sampler's late wake-up records the whole blockage in the window it wakes in.
    woke_in = max(run.aggregate.windows(), key=worst_loop_lag_ms)
    expected_start = IntervalRecorder(WINDOW_S).slot_start(run.load_ended)

    assert abs(woke_in.start_s - expected_start) < 1.5 * WINDOW_S
    assert any(r.startswith("loop_lag_ms") for r in saturation_reasons(woke_in))
    summary = generator_of(run.aggregate.windows(), tmp_path)
    assert woke_in.start_s in summary["saturated_windows"]
    assert run.idle_windows(), "at least one whole window before the burn"
    assert not any(saturation_reasons(w) for w in run.idle_windows())
    assert summary["saturated"] is True
    assert summary["loop_lag_ms"]["max"] >= 250


def test_busy_greenlets_show_as_cpu_share_and_a_whole_core_is_flagged(tmp_path: Path) -> None:
    run = sampled_run(saturate_the_cpu, 0.5)

    busy = [
        w
        for w in run.aggregate.windows()
        if w.start_s >= run.load_started + 0.02 and w.end_s <= run.load_ended
    ]
    idle = run.idle_windows()

    assert busy, "at least one whole window inside the burn"
    assert idle, "at least one whole window before the burn"
    assert min(w.gauges["cpu_share"].last for w in busy) > 0.3
    assert max(w.gauges["cpu_share"].last for w in idle) < 0.3
    assert not any(saturation_reasons(w) for w in idle)
    # A whole core is saturation; the test process gets one unless others starve it.
    if run.load_cpu_share >= 0.97:
        summary = generator_of(run.aggregate.windows(), tmp_path)
        assert {w.start_s for w in busy} <= set(summary["saturated_windows"])
        assert summary["cpu_share_max"] >= CPU_SATURATION_SHARE


def test_cpu_share_covers_the_whole_window_from_the_previous_windows_last_tick() -> None:
    wall = FakeClock(1000.0)
    recorder = IntervalRecorder(window_s=1.0, clock=wall)
    cpu = {"s": 0.0}
    health = GeneratorHealth(recorder, tick_s=0.1, clock=lambda: 0.0, cpu_clock=lambda: cpu["s"])

    # Window [1000, 1001): ticks every 0.1 s, half a core busy.
    for tick in range(1, 10):
        wall.now = 1000.0 + tick / 10
        cpu["s"] = 0.05 * tick
        health.observe(0.1, wall.now - 1000.0, cpu["s"])
    # Window [1001, 1002): the loop is saturated from the last tick of the previous window on.
    for tick in range(10, 20):
        wall.now = 1000.0 + tick / 10 + 0.001
        cpu["s"] = 0.45 + (tick - 9) * 0.1
        health.observe(0.1, wall.now - 1000.0, cpu["s"])
    windows = recorder.flush()

    assert [w.start_s for w in windows] == [1000.0, 1001.0]
    assert abs(windows[0].gauges["cpu_share"].last - 0.5) < 0.01
    assert windows[1].gauges["cpu_share"].last > 0.99
    assert windows[0].histograms["loop_lag_ms"].summary_ms()["max"] == 0.001  # on time


def test_thresholds_are_inclusive_and_either_one_suffices(tmp_path: Path) -> None:
    lagging = MetricWindow(0.0, 1.0)
    for _ in range(99):
        lagging.record("loop_lag_ms", 1.0)
    lagging.record("loop_lag_ms", 50.0)
    lagging.record("loop_lag_ms", 50.0)
    busy = MetricWindow(1.0, 2.0)
    busy.gauge("cpu_share", 0.90)
    healthy = MetricWindow(2.0, 3.0)
    healthy.gauge("cpu_share", 0.89)
    healthy.record("loop_lag_ms", 49.9)

    assert [bool(saturation_reasons(w)) for w in (lagging, busy, healthy)] == [True, True, False]
    assert generator_of([lagging, busy, healthy], tmp_path)["saturated_windows"] == [0.0, 1.0]


def test_a_run_without_health_samples_is_not_saturated(tmp_path: Path) -> None:
    quiet = MetricWindow(0.0, 0.1)
    quiet.count("streams_started")
    summary = generator_of([quiet], tmp_path)

    assert summary["saturated"] is False
    assert summary["cpu_share_max"] is None
    assert summary["loop_lag_ms"]["count"] == 0


def test_garbage_collector_pauses_are_timed_while_sampling() -> None:
    import gc

    from loadtest.metrics.generator_health import GeneratorHealth
    from loadtest.metrics.recorder import IntervalRecorder

    recorder = IntervalRecorder(window_s=60.0)
    health = GeneratorHealth(recorder)
    health.start()
    try:
        gc.collect()
    finally:
        health.stop()
    gc.collect()  # after stop: not recorded
    [window] = recorder.flush()
    assert window.histograms["gc_pause_ms"].count == 1


@pytest.mark.parametrize(("pause_ms", "flagged"), [(25.0, True), (5.0, False)])
def test_a_long_gc_pause_flags_its_window(pause_ms: float, flagged: bool) -> None:
    from loadtest.metrics.generator_health import saturation_reasons
    from loadtest.metrics.window import MetricWindow

    window = MetricWindow(0.0, 1.0)
    window.record("gc_pause_ms", pause_ms)
    assert any("gc pause" in reason for reason in saturation_reasons(window)) is flagged
