"""The recorder: record into the current window, close it on time, keep the partial last one."""

from __future__ import annotations

import pytest

from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.recorder import IntervalRecorder


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def recorder_at(now: float, window_s: float = 1.0) -> tuple[IntervalRecorder, FakeClock]:
    clock = FakeClock(now)
    return IntervalRecorder(window_s=window_s, clock=clock), clock


def test_windows_are_aligned_to_wall_clock_slots() -> None:
    recorder, _ = recorder_at(1000.4)

    recorder.record("ttfc_ms", 5.0)

    assert recorder.current_start_s == 1000.0


def test_roll_returns_nothing_until_the_window_ends_then_the_closed_window() -> None:
    recorder, clock = recorder_at(1000.2)
    recorder.record("ttfc_ms", 5.0)
    recorder.count("streams_completed")

    clock.now = 1000.9
    assert recorder.roll() == []

    clock.now = 1001.0
    closed = recorder.roll()

    assert [(w.start_s, w.end_s) for w in closed] == [(1000.0, 1001.0)]
    assert closed[0].histograms["ttfc_ms"].count == 1
    assert closed[0].counts == {"streams_completed": 1}
    assert recorder.roll() == []


def test_a_record_after_the_window_end_goes_to_the_next_window_even_before_roll() -> None:
    # The collector may run every few seconds; windows must still be window_s long.
    recorder, clock = recorder_at(1000.5)
    recorder.record("ttfc_ms", 1.0)
    clock.now = 1001.5
    recorder.record("ttfc_ms", 2.0)
    clock.now = 1002.5
    recorder.record("ttfc_ms", 3.0)

    closed = recorder.roll() + recorder.flush()

    assert [w.start_s for w in closed] == [1000.0, 1001.0, 1002.0]
    assert [w.histograms["ttfc_ms"].count for w in closed] == [1, 1, 1]


def test_empty_slots_in_between_are_skipped_not_emitted() -> None:
    recorder, clock = recorder_at(1000.5)
    recorder.count("streams_started")
    clock.now = 1005.5
    recorder.count("streams_started")
    clock.now = 1006.0

    closed = recorder.roll()

    assert [w.start_s for w in closed] == [1000.0, 1005.0]


def test_flush_keeps_the_partial_final_window_ending_at_the_flush_time() -> None:
    recorder, clock = recorder_at(1000.2)
    recorder.record("stream_ms", 100.0)
    clock.now = 1001.3
    recorder.record("stream_ms", 200.0)

    closed = recorder.flush()

    assert [(w.start_s, w.end_s) for w in closed] == [(1000.0, 1001.0), (1001.0, 1001.3)]
    assert recorder.flush() == []


def test_recording_after_flush_starts_a_window_of_the_same_slot_that_merges_back() -> None:
    recorder, clock = recorder_at(1000.2)
    recorder.count("streams_started")
    first = recorder.flush()
    clock.now = 1000.6
    recorder.count("streams_started")
    second = recorder.flush()

    aggregate = RunAggregate()
    aggregate.add_all(first + second)

    assert [w.start_s for w in aggregate.windows()] == [1000.0]
    assert aggregate.windows()[0].counts == {"streams_started": 2}
    assert (aggregate.windows()[0].start_s, aggregate.windows()[0].end_s) == (1000.0, 1000.6)


def test_sub_second_windows() -> None:
    recorder, clock = recorder_at(1000.3, window_s=0.25)
    recorder.count("pings_sent")
    clock.now = 1000.55
    recorder.count("pings_sent")

    closed = recorder.flush()

    assert [w.start_s for w in closed] == [1000.25, 1000.5]


def test_window_length_must_be_positive() -> None:
    with pytest.raises(ValueError):
        IntervalRecorder(window_s=0)
