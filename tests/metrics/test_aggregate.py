"""The run aggregate: windows of several workers merged per slot and in totals, sealed."""

from __future__ import annotations

import pytest

from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.catalog import BREAKDOWNS, COUNTS, METRICS
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.window import MetricWindow


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
        "connections_opened": {"by_receive_clock": {}},
    }
    assert set(summary["breakdowns"]) == set(BREAKDOWNS)
    assert summary["out_of_range"]["ttfc_ms"] == 1


def test_an_empty_aggregate_still_has_the_full_summary_shape() -> None:
    summary = RunAggregate().totals_summary()

    assert summary["metrics"]["ttfc_ms"] == LatencyHistogram().summary_ms()
    assert set(summary["counts"].values()) == {0}


def test_sealing_drops_windows_from_memory_but_keeps_totals_and_digests() -> None:
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
