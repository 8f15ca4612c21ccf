"""Windows: record into the current one, close on time, keep the partial last one, merge
across workers by slot."""

from __future__ import annotations

import msgpack
import pytest

from loadtest.metrics.catalog import BREAKDOWNS, COUNTS, METRICS
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.window import IntervalRecorder, MetricWindow, RunAggregate


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def recorder_at(now: float, window_s: float = 1.0) -> tuple[IntervalRecorder, FakeClock]:
    clock = FakeClock(now)
    return IntervalRecorder(window_s=window_s, clock=clock), clock


# -- MetricWindow ----------------------------------------------------------------------------


def test_count_with_a_label_increments_total_and_breakdown() -> None:
    window = MetricWindow(10.0, 11.0)

    window.count("connection_failures", by="401")
    window.count("connection_failures", by="401")
    window.count("connection_failures", by="timeout")
    window.count("disconnects", by=1006)  # close codes may be ints; labels are strings
    window.count("streams_started", 5)

    assert window.counts == {"connection_failures": 3, "disconnects": 1, "streams_started": 5}
    assert window.breakdowns == {
        "connection_failures": {"401": 2, "timeout": 1},
        "disconnects": {"1006": 1},
    }


def test_unknown_names_fail_loudly() -> None:
    window = MetricWindow(0.0, 1.0)

    with pytest.raises(ValueError, match="unknown metric"):
        window.record("ttfc", 1.0)
    with pytest.raises(ValueError, match="unknown counter"):
        window.count("stream_started")
    with pytest.raises(ValueError, match="no breakdown"):
        window.count("reconnects", by="x")
    with pytest.raises(ValueError, match="unknown gauge"):
        window.gauge("cpu", 0.5)


def test_gauge_keeps_last_and_max() -> None:
    window = MetricWindow(0.0, 1.0)

    for value in (0.2, 0.9, 0.4):
        window.gauge("cpu_share", value)

    assert (window.gauges["cpu_share"].last, window.gauges["cpu_share"].max) == (0.4, 0.9)


def test_wire_round_trip_through_msgpack_keeps_everything() -> None:
    window = MetricWindow(10.0, 11.0)
    for value in (1.0, 2.0, 99_999_999.0):
        window.record("ttfc_ms", value)
    window.count("protocol_violations", by="cross_talk")
    window.gauge("cpu_share", 0.5)

    # Locust packs worker reports with msgpack, as here.
    wire = msgpack.unpackb(msgpack.packb(window.to_wire(), use_bin_type=True), raw=False)
    rebuilt = MetricWindow.from_wire(wire)

    assert rebuilt.summary() == window.summary()
    assert rebuilt.histograms["ttfc_ms"].out_of_range == 1


def test_from_wire_refuses_unknown_versions() -> None:
    wire = MetricWindow(0.0, 1.0).to_wire() | {"v": 99}

    with pytest.raises(ValueError, match="version"):
        MetricWindow.from_wire(wire)


# -- IntervalRecorder --------------------------------------------------------------------------


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


# -- RunAggregate ----------------------------------------------------------------------------


def worker_windows(seed: int) -> list[MetricWindow]:
    """Two windows of one worker: slots [10, 11) and [11, 12)."""
    windows = []
    for start in (10.0, 11.0):
        window = MetricWindow(start, start + 1.0)
        for i in range(50):
            window.record("ttfc_ms", seed * 10.0 + i + start)
        window.count("streams_completed", 50)
        window.count("connection_failures", by="401" if seed else "timeout")
        window.gauge("cpu_share", 0.3 + seed / 10)
        windows.append(window)
    return windows


def test_run_aggregate_merges_two_workers_overlapping_windows_per_slot_and_in_totals() -> None:
    worker_a, worker_b = worker_windows(0), worker_windows(1)
    aggregate = RunAggregate()
    # Any order: b's later window first, then a's, then b's earlier one.
    for window in (worker_b[1], worker_a[0], worker_a[1], worker_b[0]):
        aggregate.add(window)

    merged = aggregate.windows()
    assert [(w.start_s, w.end_s) for w in merged] == [(10.0, 11.0), (11.0, 12.0)]
    for slot, (a, b) in zip(merged, zip(worker_a, worker_b, strict=True), strict=True):
        expected = a.histograms["ttfc_ms"].copy()
        expected.merge(b.histograms["ttfc_ms"])
        assert slot.histograms["ttfc_ms"].summary_ms() == expected.summary_ms()
        assert slot.counts["streams_completed"] == 100
        assert slot.gauges["cpu_share"].max == pytest.approx(0.4)  # the worse worker

    totals = aggregate.totals
    assert (totals.start_s, totals.end_s) == (10.0, 12.0)
    assert totals.histograms["ttfc_ms"].count == 200
    assert aggregate.window(11.0) is merged[1]


def test_adding_does_not_alias_the_callers_window() -> None:
    window = worker_windows(0)[0]
    aggregate = RunAggregate()
    aggregate.add(window)
    aggregate.add(worker_windows(1)[0])

    assert window.counts["streams_completed"] == 50
    assert window.histograms["ttfc_ms"].count == 50


def test_between_merges_a_time_range() -> None:
    aggregate = RunAggregate()
    aggregate.add_all(worker_windows(0) + worker_windows(1))

    both = aggregate.between(10.0, 12.0)
    first = aggregate.between(10.0, 11.0)

    assert both.histograms["ttfc_ms"].count == 200
    assert first.histograms["ttfc_ms"].count == 100
    assert aggregate.between(50.0, 60.0).is_empty


def test_totals_summary_has_every_contract_key_flat_counts_and_nested_breakdowns() -> None:
    aggregate = RunAggregate()
    aggregate.add_all(worker_windows(0) + worker_windows(1))
    extra = MetricWindow(12.0, 13.0)
    extra.record("loop_lag_ms", 3.0)  # generator health stays out of "metrics"
    extra.record("ttfc_ms", 99_999_999.0)
    aggregate.add(extra)

    summary = aggregate.totals_summary()

    assert list(summary["metrics"]) == list(METRICS)
    assert summary["metrics"]["ttfc_ms"]["count"] == 201
    assert summary["metrics"]["connect_ms"]["count"] == 0
    assert list(summary["counts"]) == list(COUNTS)
    assert summary["counts"]["streams_completed"] == 200
    assert summary["counts"]["connection_failures"] == 4
    assert all(isinstance(n, int) for n in summary["counts"].values())
    assert summary["breakdowns"] == {
        "connection_failures": {"by_status": {"401": 2, "timeout": 2}},
        "disconnects": {"by_close_code": {}},
        "protocol_violations": {"by_kind": {}},
        "streams_failed": {"by_error_kind": {}},
        "rest_failures": {"by_call": {}},
        "connections_closed": {"by_initiator": {}},
        "users_stopped": {"by_reason": {}},
        "error_frames": {"by_code": {}},
    }
    assert set(summary["breakdowns"]) == set(BREAKDOWNS)
    assert summary["out_of_range"]["ttfc_ms"] == 1


def test_an_empty_aggregate_still_has_the_full_summary_shape() -> None:
    summary = RunAggregate().totals_summary()

    assert summary["metrics"]["ttfc_ms"] == LatencyHistogram().summary_ms()
    assert set(summary["counts"].values()) == {0}


def test_sealing_drops_windows_from_memory_but_keeps_totals_and_digests() -> None:
    from loadtest.metrics.window import MetricWindow, RunAggregate

    aggregate = RunAggregate()
    for start in (100.0, 101.0, 102.0):
        window = MetricWindow(start, start + 1)
        window.record("ttfc_ms", 10.0 * (start - 99))
        window.gauge("cpu_share", 0.5)
        aggregate.add(window)
    sealed = aggregate.seal(before_s=102.0, notes=lambda w: ["hot"] if w.start_s == 101 else [])
    assert [w.start_s for w in sealed] == [100.0, 101.0]
    assert [w.start_s for w in aggregate.windows()] == [102.0]
    assert [(d.start_s, d.notes) for d in aggregate.digests()] == [(100.0, ()), (101.0, ("hot",))]
    assert aggregate.totals_summary()["metrics"]["ttfc_ms"]["count"] == 3
    straggler = MetricWindow(100.0, 101.0)
    straggler.record("ttfc_ms", 5.0)
    aggregate.add(straggler)
    assert [w.start_s for w in aggregate.seal()] == [100.0, 102.0]
    assert aggregate.totals_summary()["metrics"]["ttfc_ms"]["count"] == 4
    assert len(aggregate.digests()) == 3
