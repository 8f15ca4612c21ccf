"""LatencyHistogram: exact, mergeable, and honest about values it cannot hold."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.metrics.histogram import (
    HIGHEST_US,
    PERCENTILES,
    SETTLE_EVERY,
    SUMMARY_KEYS,
    LatencyHistogram,
)


def latencies(seed: int, n: int) -> list[float]:
    """A long-tailed sample in ms, from sub-millisecond to seconds."""
    rng = random.Random(seed)
    return [rng.lognormvariate(3.0, 1.5) for _ in range(n)]


def histogram_of(values: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.record_ms(value)
    return histogram


def test_merging_eight_workers_encoded_histograms_equals_one_histogram_of_all_data() -> None:
    workers = [latencies(seed, 3_000) for seed in range(8)]
    everything = histogram_of([v for worker in workers for v in worker])

    merged = LatencyHistogram()
    for worker in workers:
        merged.merge(LatencyHistogram.decode(histogram_of(worker).encode()))

    assert merged.count == 24_000
    assert merged.summary_ms() == everything.summary_ms()
    for percentile in (0.1, 1, 25, 50, 75, 90, 99, 99.9, 99.99, 100):
        assert merged.value_at_percentile_ms(percentile) == everything.value_at_percentile_ms(
            percentile
        )


def test_summary_uses_hdrhistogram_definitions_exactly() -> None:
    histogram = histogram_of(latencies(7, 20_000))
    hdr = histogram.hdr

    summary = histogram.summary_ms()

    assert tuple(summary) == SUMMARY_KEYS
    assert summary["count"] == 20_000
    for name, percentile in PERCENTILES.items():
        assert summary[name] == round(hdr.get_value_at_percentile(percentile) / 1000, 3)
    assert summary["mean"] == round(hdr.get_mean_value() / 1000, 3)
    assert summary["min"] == round(hdr.get_min_value() / 1000, 3)
    assert summary["max"] == round(hdr.get_max_value() / 1000, 3)


def test_three_significant_digits_in_microseconds() -> None:
    histogram = histogram_of([12.3456] * 10)  # 12,346 µs: bucket width 8 µs at this magnitude

    summary = histogram.summary_ms()

    assert abs(summary["p50"] - 12.3456) <= 12.3456 * 0.001
    assert summary["min"] <= 12.346 <= summary["max"]


def test_empty_histogram_summarises_to_zeros_with_count_zero() -> None:
    summary = LatencyHistogram().summary_ms()

    assert summary == {"count": 0} | dict.fromkeys(SUMMARY_KEYS[1:], 0.0)


def test_zero_and_sub_microsecond_values_are_real_and_recorded_as_one_microsecond() -> None:
    histogram = histogram_of([0.0, 0.0004])

    assert histogram.count == 2
    assert histogram.out_of_range == 0
    assert histogram.summary_ms()["max"] == 0.001


def test_values_beyond_one_hour_are_clamped_and_counted_never_dropped() -> None:
    histogram = histogram_of([5.0, 3_600_000.0, 3_600_001.0, 7_200_000.0, float("inf")])

    assert histogram.count == 5
    assert histogram.out_of_range == 3  # exactly 1 h is in range
    assert histogram.hdr.get_count_at_value(HIGHEST_US) == 4
    assert histogram.summary_ms()["max"] >= 3_600_000.0


def test_negative_values_are_clock_bugs_counted_out_of_range() -> None:
    histogram = histogram_of([-1.0])

    assert histogram.count == 1
    assert histogram.out_of_range == 1
    assert histogram.summary_ms()["min"] == 0.001


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        LatencyHistogram().record_ms(float("nan"))


def test_out_of_range_count_survives_encode_decode_and_merge() -> None:
    first = histogram_of([1.0, 10_000_000.0])
    second = histogram_of([2.0, 20_000_000.0, 30_000_000.0])

    merged = LatencyHistogram.decode(first.encode())
    merged.merge(LatencyHistogram.decode(second.encode()))

    assert merged.count == 5
    assert merged.out_of_range == 3


def test_merge_keeps_the_true_minimum_whichever_side_is_empty() -> None:
    # hdrh's own add() turns the minimum into 0 when either side is empty.
    recorded = histogram_of([42.0, 50.0])
    into_empty = LatencyHistogram()
    into_empty.merge(recorded)
    empty_into = histogram_of([42.0, 50.0])
    empty_into.merge(LatencyHistogram())

    assert into_empty.summary_ms() == recorded.summary_ms()
    assert empty_into.summary_ms() == recorded.summary_ms()
    assert recorded.summary_ms()["min"] == pytest.approx(42.0, rel=0.001)


def test_copy_is_independent() -> None:
    original = histogram_of([1.0, 2.0])
    clone = original.copy()
    clone.record_ms(3.0)

    assert original.count == 2
    assert clone.count == 3


def test_a_bare_standard_blob_decodes_with_zero_out_of_range() -> None:
    histogram = histogram_of([1.0, 9_999_999.0])

    decoded = LatencyHistogram.decode(histogram.to_hdr_blob())

    assert decoded.summary_ms() == histogram.summary_ms()
    assert decoded.out_of_range == 0


@pytest.mark.parametrize("garbage", [b"", b"nonsense", b"LH1:x:HISTF", b"LH1:3:not-base64!"])
def test_decoding_garbage_raises_value_error(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram.decode(garbage)


def test_a_dropped_histogram_is_freed_at_once_not_by_the_cycle_collector() -> None:
    """hdrh's histogram and its encoder point at each other; ours must not keep that cycle,
    or a generator making histograms every second grows by hundreds of MB between full
    collections."""
    import gc
    import weakref

    gc.disable()
    try:
        made = LatencyHistogram()
        made.record_ms(5.0)
        decoded = LatencyHistogram.decode(made.encode())
        refs = [weakref.ref(made.hdr), weakref.ref(decoded.hdr)]
        del made, decoded
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-5.0, max_value=5_000_000.0, allow_nan=False), max_size=60))
def test_recording_many_fills_the_counters_hdrh_itself_would(values: list[float]) -> None:
    """Our inlined index arithmetic is hdrh's record_value, value for value."""
    ours = LatencyHistogram()
    ours.record_many_ms(values)
    reference = LatencyHistogram().hdr
    for value in values:
        if value > 3_600_000.0:
            value_us = 3_600_000_000
        elif value < 0:
            value_us = 1
        else:
            value_us = max(1, round(value * 1000.0))
        assert reference.record_value(value_us)
    assert list(ours.hdr.counts) == list(reference.counts)
    assert ours.hdr.total_count == reference.total_count == len(values)
    assert ours.hdr.get_min_value() == reference.get_min_value()
    assert ours.hdr.get_max_value() == reference.get_max_value()


def test_a_nan_mid_way_leaves_what_was_recorded_consistent() -> None:
    histogram = LatencyHistogram()
    with pytest.raises(ValueError):
        histogram.record_many_ms([1.0, 2.0, float("nan"), 3.0])
    assert histogram.count == 2 == sum(histogram.hdr.counts)
    assert histogram.summary_ms()["max"] == pytest.approx(2.0, abs=0.002)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=True)
            | st.floats(min_value=-1.0, max_value=10.0, allow_nan=False)
            | st.sampled_from([0.0, 0.0005, 0.0015, 3_600_000.0, 3_600_000.0005]),
            max_size=20,
        ),
        max_size=5,
    )
)
def test_values_counted_when_read_are_those_counted_one_by_one(batches: list[list[float]]) -> None:
    """Recording keeps values and counts them on the next read, all at once: the counters,
    totals, extremes and out-of-range count are those of counting each value as it came."""
    deferred, immediate = LatencyHistogram(), LatencyHistogram()
    for batch in batches:
        deferred.record_many_ms(batch)
        immediate._record_now(batch)
    assert list(deferred.hdr.counts) == list(immediate.hdr.counts)
    assert deferred.out_of_range == immediate.out_of_range
    assert deferred.summary_ms() == immediate.summary_ms()


def test_a_busy_window_is_counted_while_recording_not_all_at_its_close() -> None:
    """Counting a whole window's values when it closes held the event loop for milliseconds;
    no more than SETTLE_EVERY values ever wait, and the counters are those of one by one."""
    rng = random.Random(7)
    deferred, immediate = LatencyHistogram(), LatencyHistogram()
    for _ in range(3 * SETTLE_EVERY // 10):
        gaps = [rng.uniform(0.0, 300.0) for _ in range(9)]
        deferred.record_many_ms(gaps)
        immediate._record_now(gaps)
        ttfc = rng.uniform(40.0, 60.0)
        deferred.record_ms(ttfc)
        immediate._record_now([ttfc])
        assert len(deferred._pending) < SETTLE_EVERY
    assert list(deferred.hdr.counts) == list(immediate.hdr.counts)
    assert deferred.summary_ms() == immediate.summary_ms()


def test_every_read_sees_what_was_recorded_before_it() -> None:
    def recorded() -> LatencyHistogram:
        histogram = LatencyHistogram()
        histogram.record_many_ms([1.0, 2.0, 5_000_000.0])
        histogram.record_ms(3.0)
        return histogram

    assert recorded().count == 4
    assert len(recorded()) == 4
    assert recorded().out_of_range == 1
    assert recorded().summary_ms()["max"] == pytest.approx(3_600_000.0, rel=0.001)
    assert recorded().values_at_percentiles_ms([50.0]) == [pytest.approx(2.0, abs=0.002)]
    assert recorded().value_at_percentile_ms(50.0) == pytest.approx(2.0, abs=0.002)
    assert LatencyHistogram.decode(recorded().encode()).count == 4
    assert recorded().copy().count == 4
    merged = LatencyHistogram()
    merged.merge(recorded())
    assert (merged.count, merged.out_of_range) == (4, 1)
    into = recorded()
    into.add_blob(recorded().to_hdr_blob())
    assert into.count == 8
