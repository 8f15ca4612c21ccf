"""streams.csv: one typed row per stream, written per window, read back as a DataFrame."""

from __future__ import annotations

import csv
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loadtest.errors import UsageError
from loadtest.metrics.stream_rows import (
    COLUMNS,
    StreamRowWriter,
    read_stream_rows,
    streams_path,
)

SENT = 1_700_000_000.25

COMPLETED = {
    "worker": 0,
    "user": "7",
    "consultation_id": "c-1",
    "stream_seq": 1,
    "intended_start_utc": SENT - 0.0125,
    "sent_utc": SENT,
    "schedule_lag_ms": 12.5,
    "connect_ms": 3.25,
    "ttfs_ms": 10.0,
    "ttfc_ms": 20.1234567,
    "stream_ms": 800.0,
    "chunks": 40,
    "characters": 210,
    "max_gap_ms": 55.5,
    "outcome": "completed",
    "retried": False,
}
FAILED = {
    "worker": 1,
    "user": "3",
    "consultation_id": "c-2, with comma",
    "stream_seq": 2,
    "sent_utc": datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC),
    "ttfc_ms": 30.0,
    "outcome": "failed",
    "error_kind": "disconnect",
    "close_code": 1006,
    "retried": True,
}


def test_round_trip_keeps_values_types_and_missing_cells(tmp_path: Path) -> None:
    with StreamRowWriter(streams_path(tmp_path)) as writer:
        writer.write(COMPLETED)
        writer.write(FAILED)

    rows = read_stream_rows(tmp_path)

    assert tuple(rows.columns) == COLUMNS
    assert len(rows) == 2
    first, second = rows.iloc[0], rows.iloc[1]
    assert first["worker"] == "0"
    assert first["ttfc_ms"] == 20.123  # 1 µs resolution
    assert first["chunks"] == 40
    assert first["sent_utc"] == pd.Timestamp(SENT, unit="s", tz="UTC")
    # Timestamps keep microseconds (float epoch noise below that is dropped).
    assert first["intended_start_utc"] == pd.Timestamp("2023-11-14T22:13:20.237500Z")
    assert not first["retried"]
    assert pd.isna(first["close_code"])
    assert pd.isna(first["error_kind"])
    assert second["consultation_id"] == "c-2, with comma"
    assert second["sent_utc"] == pd.Timestamp("2023-11-14T22:13:21Z")
    assert second["close_code"] == 1006
    assert bool(second["retried"])
    assert pd.isna(second["stream_ms"])
    assert str(rows["chunks"].dtype) == "Int64"
    assert str(rows["retried"].dtype) == "boolean"
    assert str(rows["sent_utc"].dtype) == "datetime64[ns, UTC]"


def test_rows_reach_the_file_on_flush_not_before(tmp_path: Path) -> None:
    writer = StreamRowWriter(streams_path(tmp_path))
    writer.write(COMPLETED)

    assert writer.pending == 1
    assert len(read_stream_rows(tmp_path)) == 0  # header only

    writer.flush()
    assert writer.pending == 0
    assert len(read_stream_rows(tmp_path)) == 1
    writer.close()


def test_drain_writes_slice_by_slice_pausing_between_slices(tmp_path: Path) -> None:
    writer = StreamRowWriter(streams_path(tmp_path))
    rows = deque({**COMPLETED, "stream_seq": seq} for seq in range(1, 121))
    written_at_each_pause = []

    writer.drain(rows, 50, lambda: written_at_each_pause.append(len(read_stream_rows(tmp_path))))

    assert written_at_each_pause == [50, 100]  # each slice is in the file before the pause
    assert not rows
    assert read_stream_rows(tmp_path)["stream_seq"].tolist() == list(range(1, 121))
    writer.close()


def test_rows_a_killed_drain_left_are_written_by_the_next(tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    def killed() -> None:
        raise Killed

    writer = StreamRowWriter(streams_path(tmp_path))
    rows = deque({**COMPLETED, "stream_seq": seq} for seq in range(1, 121))
    with pytest.raises(Killed):
        writer.drain(rows, 50, killed)
    assert len(rows) == 70

    writer.drain(rows, 50)
    writer.close()
    assert read_stream_rows(tmp_path)["stream_seq"].tolist() == list(range(1, 121))


def test_appending_keeps_one_header(tmp_path: Path) -> None:
    for _ in range(2):
        with StreamRowWriter(streams_path(tmp_path)) as writer:
            writer.write(COMPLETED)

    assert streams_path(tmp_path).read_text().count("consultation_id") == 1
    assert len(read_stream_rows(tmp_path)) == 2


def test_the_header_is_the_documented_column_list(tmp_path: Path) -> None:
    StreamRowWriter(streams_path(tmp_path)).close()

    assert streams_path(tmp_path).read_text().strip() == (
        "worker,user,consultation_id,stream_seq,intended_start_utc,sent_utc,schedule_lag_ms,"
        "connect_ms,ttfs_ms,ttfc_ms,stream_ms,chunks,characters,max_gap_ms,outcome,"
        "error_kind,close_code,retried,message_id,violations"
    )


@pytest.mark.parametrize(
    "row",
    [
        {"ttfc": 1.0},
        {"outcome": "ok"},
        {"sent_utc": datetime(2023, 1, 1)},  # naive: which zone?
    ],
)
def test_bad_rows_are_refused_at_write(tmp_path: Path, row: dict[str, object]) -> None:
    with StreamRowWriter(streams_path(tmp_path)) as writer, pytest.raises(ValueError):
        writer.write(row)


def test_a_run_directory_without_rows_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        read_stream_rows(tmp_path)


def test_a_file_with_fewer_or_extra_columns_still_reads_with_the_full_schema(
    tmp_path: Path,
) -> None:
    streams_path(tmp_path).write_text("worker,ttfc_ms,note\n1,2.5,x\n")

    rows = read_stream_rows(tmp_path)

    assert tuple(rows.columns) == (*COLUMNS, "note")
    assert rows.iloc[0]["ttfc_ms"] == 2.5
    assert pd.isna(rows.iloc[0]["sent_utc"])


def test_parquet_rows_read_back_as_the_csv_rows_do(tmp_path: Path) -> None:
    from loadtest.metrics.stream_rows import PARQUET_FILE, write_parquet_rows

    with StreamRowWriter(tmp_path / "streams.csv") as writer:
        writer.write({"worker": "w1", "user": 3, "stream_seq": 1, "sent_utc": 1_800_000_000.25,
                      "ttfc_ms": 51.2345, "outcome": "completed", "retried": False})
        writer.write({"worker": "w1", "user": 3, "stream_seq": 2, "sent_utc": 1_800_000_001.5,
                      "outcome": "failed", "error_kind": "timeout", "close_code": 1006,
                      "retried": True})  # fmt: skip
    from_csv = read_stream_rows(tmp_path)
    assert write_parquet_rows(tmp_path) == tmp_path / PARQUET_FILE
    from_parquet = read_stream_rows(tmp_path)
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_every_cell_is_written_as_its_column_kind_formats_it(tmp_path: Path) -> None:
    """csv writes most cells itself (str columns, ints, timestamps already text): the file
    must hold what each column's formatter makes of the value, whatever its type."""
    from loadtest.metrics.stream_rows import _FORMAT_BY_KIND, COLUMN_TYPES

    rows = [
        COMPLETED,
        FAILED,
        {"worker": None, "user": 7, "stream_seq": True, "chunks": 40.0, "close_code": "",
         "ttfc_ms": 20, "max_gap_ms": "", "sent_utc": "2026-12-03T10:00:00.000001Z",
         "intended_start_utc": 1_700_000_000, "retried": 0, "message_id": 12,
         "error_kind": "a \"quoted\", comma", "violations": False},
    ]  # fmt: skip
    with StreamRowWriter(streams_path(tmp_path)) as writer:
        for row in rows:
            writer.write(row)

    expected = [[_FORMAT_BY_KIND[kind](row.get(column)) for column, kind in
                 COLUMN_TYPES.items()] for row in rows]  # fmt: skip
    with streams_path(tmp_path).open(newline="") as file:
        assert list(csv.reader(file))[1:] == expected
