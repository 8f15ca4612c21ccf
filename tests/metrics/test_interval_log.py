"""Interval log: windows written as they close rebuild the same percentiles and counters."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hdrh.log import HistogramLogReader

from loadtest.errors import UsageError
from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.interval_log import (
    COUNTS_FILE,
    HLOG_FILE,
    IntervalLogWriter,
    read_interval_log,
)
from loadtest.metrics.window import MetricWindow

START = 1_700_000_000.0


def sample_windows(worker: int, slots: int = 4) -> list[MetricWindow]:
    """A worker's windows with latencies, labelled counters, a gauge and a clamped sample."""
    rng = random.Random(worker)
    windows = []
    for slot in range(slots):
        window = MetricWindow(START + slot, START + slot + 1)
        for _ in range(200):
            window.record("ttfc_ms", rng.lognormvariate(3, 1))
            window.record("inter_chunk_ms", rng.uniform(0, 40))
        window.count("streams_completed", 200)
        window.count("connection_failures", by=rng.choice(["401", "timeout"]))
        window.gauge("cpu_share", rng.uniform(0, 1))
        windows.append(window)
    windows[-1].record("stream_ms", 5_000_000.0)  # beyond 1 h: clamped and counted
    return windows


def test_round_trip_rebuilds_every_window_and_the_totals_exactly(tmp_path: Path) -> None:
    windows = sample_windows(0) + sample_windows(1)  # two workers' entries per slot
    in_memory = RunAggregate()
    in_memory.add_all(windows)

    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(windows)
    log = read_interval_log(tmp_path)

    assert log.skipped_lines == 0
    rebuilt = log.aggregate
    assert [w.start_s for w in rebuilt.windows()] == [w.start_s for w in in_memory.windows()]
    for ours, theirs in zip(rebuilt.windows(), in_memory.windows(), strict=True):
        assert ours.summary() == theirs.summary()
    assert rebuilt.totals_summary() == in_memory.totals_summary()
    assert rebuilt.totals_summary()["out_of_range"]["stream_ms"] == 2


def test_percentiles_of_one_window_and_of_a_time_range(tmp_path: Path) -> None:
    windows = sample_windows(0)
    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(windows)
    log = read_interval_log(tmp_path)

    second = log.percentiles(START + 1)
    middle = log.percentiles(START + 1, START + 3)

    assert second["ttfc_ms"] == windows[1].histograms["ttfc_ms"].summary_ms()
    expected = windows[1].histograms["ttfc_ms"].copy()
    expected.merge(windows[2].histograms["ttfc_ms"])
    assert middle["ttfc_ms"] == expected.summary_ms()
    assert log.percentiles(START + 99) == {}


def test_reading_can_select_metrics_and_a_time_range(tmp_path: Path) -> None:
    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(sample_windows(0))

    log = read_interval_log(tmp_path, metrics=["ttfc_ms"], start_s=START + 2)

    assert [w.start_s for w in log.aggregate.windows()] == [START + 2, START + 3]
    assert set(log.aggregate.totals.histograms) == {"ttfc_ms"}
    assert log.aggregate.totals.counts["streams_completed"] == 400


def test_the_log_is_standard_tagged_hdrhistogram_that_hdrh_reads(tmp_path: Path) -> None:
    windows = sample_windows(0, slots=2)
    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(windows)

    reader = HistogramLogReader(str(tmp_path / HLOG_FILE), LatencyHistogram().hdr)
    seen = []
    while (histogram := reader.get_next_interval_histogram()) is not None:
        seen.append((histogram.get_tag(), histogram.get_start_time_stamp() / 1000.0))
        original = windows[int(seen[-1][1] - START)].histograms[histogram.get_tag()]
        assert LatencyHistogram.from_hdr(histogram).summary_ms() == original.summary_ms()
    reader.close()

    assert seen == [
        ("inter_chunk_ms", START),
        ("ttfc_ms", START),
        ("inter_chunk_ms", START + 1),
        ("stream_ms", START + 1),
        ("ttfc_ms", START + 1),
    ]


def test_every_window_is_on_disk_as_soon_as_it_is_written(tmp_path: Path) -> None:
    writer = IntervalLogWriter(tmp_path, start_time_s=START)
    windows = sample_windows(0)
    writer.write(windows[0])

    # Not closed: a crash now must still leave the first window readable.
    log = read_interval_log(tmp_path)
    assert [w.start_s for w in log.aggregate.windows()] == [START]
    writer.close()


def test_a_line_cut_by_a_crash_is_skipped_and_counted(tmp_path: Path) -> None:
    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(sample_windows(0))
    for name in (HLOG_FILE, COUNTS_FILE):
        path = tmp_path / name
        path.write_text(path.read_text()[:-40])  # cut the last line short

    log = read_interval_log(tmp_path)

    assert log.skipped_lines == 2
    assert len(log.aggregate.windows()) == 4  # the last window's other lines survive


def test_appending_to_an_existing_log_writes_the_header_once(tmp_path: Path) -> None:
    for window in sample_windows(0, slots=2):
        with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
            writer.write(window)

    text = (tmp_path / HLOG_FILE).read_text()
    assert text.count("#[StartTime:") == 1
    assert text.count("#[BaseTime: 0.000") == 1
    assert len(read_interval_log(tmp_path).aggregate.windows()) == 2


def test_counts_file_is_json_lines_with_out_of_range(tmp_path: Path) -> None:
    with IntervalLogWriter(tmp_path, start_time_s=START) as writer:
        writer.write_all(sample_windows(0))

    lines = [json.loads(line) for line in (tmp_path / COUNTS_FILE).read_text().splitlines()]

    assert [line["start_s"] for line in lines] == [START + i for i in range(4)]
    assert lines[-1]["out_of_range"] == {"stream_ms": 1}
    assert lines[0]["out_of_range"] == {}
    assert sum(lines[0]["breakdowns"]["connection_failures"].values()) == 1


def test_a_directory_without_an_interval_log_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read interval log"):
        read_interval_log(tmp_path)
