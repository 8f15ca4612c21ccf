"""One row per stream in ``streams.csv``: the raw material behind every aggregate.

Histograms answer "what was p99"; rows answer "which streams were slow, when, on which
connection". The column list is fixed and documented in ``docs/metrics.md``; new columns are
only ever appended, so scripts that read by name keep working.

Rows are buffered by :meth:`StreamRowWriter.write` (cheap enough for the hot path) and reach the
file on :meth:`StreamRowWriter.flush`, which the caller runs once per window: a crash loses at
most the rows of the window being recorded. A row is a plain ``dict`` of str/int/float/bool/None
(timestamps as epoch seconds), so a Locust worker can ship rows to the master in its reports.

pandas is imported only by :func:`read_stream_rows`, so the load generator never pays for it.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from loadtest.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

STREAMS_FILE = "streams.csv"
PARQUET_FILE = "streams.parquet"

COLUMN_TYPES: dict[str, str] = {
    "worker": "str",  # which load-generator process (worker index or id)
    "user": "str",  # the Locust user (conversation) within the worker
    "consultation_id": "str",
    "stream_seq": "int",  # 1, 2, … within the consultation
    "intended_start_utc": "utc",  # open model: when the schedule wanted the send
    "sent_utc": "utc",  # when user_message was actually sent
    "schedule_lag_ms": "ms",
    "connect_ms": "ms",  # the handshake this stream waited for, if any
    "ttfs_ms": "ms",
    "ttfc_ms": "ms",
    "stream_ms": "ms",
    "chunks": "int",
    "characters": "int",
    "max_gap_ms": "ms",  # the longest inter-chunk gap of this stream
    "outcome": "str",  # completed | failed | cancelled
    "error_kind": "str",  # for failed streams, as in breakdowns.streams_failed.by_error_kind
    "close_code": "int",  # the WebSocket close code that ended the stream, if one did
    "retried": "bool",  # this stream is a retry of a failed one
    "message_id": "str",  # our user_message id: joins a row to the target's ground truth
    "violations": "int",  # protocol violations seen while this stream was open
}
"""Column → kind, in file order. Kinds: ``str``; ``int``; ``ms`` (float, written with 3
decimals = 1 µs); ``utc`` (ISO 8601 UTC with microseconds, ``…Z``; given as epoch seconds or an
aware ``datetime``); ``bool`` (``true``/``false``). Missing or None → empty cell."""

COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)
"""The fixed column list of ``streams.csv``."""
_KNOWN_COLUMNS = frozenset(COLUMNS)

OUTCOMES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def streams_path(run_dir: str | Path) -> Path:
    """Where a run directory keeps its stream rows."""
    return Path(run_dir) / STREAMS_FILE


class StreamRowWriter:
    """Buffers stream rows and appends them to a CSV file on :meth:`flush`.

    Args:
        path: the CSV file (usually :func:`streams_path`); created with a header row when new
            or empty, appended to otherwise.

    Use it as a context manager, or call :meth:`close` (which flushes).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._pending: list[list[Any]] = []
        if self._file.tell() == 0:
            self._csv.writerow(COLUMNS)
            self._file.flush()

    @property
    def pending(self) -> int:
        """Rows written but not yet flushed to the file."""
        return len(self._pending)

    def write(self, row: Mapping[str, Any]) -> None:
        """Buffer one stream's row.

        Args:
            row: column → value; missing columns (or None values) become empty cells.

        Raises:
            ValueError: an unknown column (a typo would otherwise lose data silently), an
                ``outcome`` outside completed/failed/cancelled, or a value of the wrong kind.
        """
        if not _KNOWN_COLUMNS.issuperset(row):
            unknown = row.keys() - _KNOWN_COLUMNS
            raise ValueError(f"unknown stream row columns {sorted(unknown)}; known: {COLUMNS}")
        outcome = row.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, got {outcome!r}")
        cells = list(map(row.get, COLUMNS))
        for index, format_cell, written_as_is in _CELLS_TO_FORMAT:
            value = cells[index]
            if value is not None and type(value) is not written_as_is:
                cells[index] = format_cell(value)
        self._pending.append(cells)

    def flush(self) -> None:
        """Append the buffered rows and flush them to the operating system."""
        if self._pending:
            self._csv.writerows(self._pending)
            self._pending.clear()
        self._file.flush()

    def drain(
        self,
        rows: deque[Mapping[str, Any]],
        slice_rows: int,
        pause: Callable[[], None] | None = None,
    ) -> None:
        """Write and flush ``rows`` (taking them off the left) ``slice_rows`` at a time,
        calling ``pause`` between slices so a caller on an event loop lets it run.

        A row leaves ``rows`` only once written: if ``pause`` raises (the writing greenlet
        killed), what is left is still there for the next call.
        """
        while rows:
            for _ in range(min(slice_rows, len(rows))):
                self.write(rows.popleft())
            self.flush()
            if pause is not None and rows:
                pause()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._file.closed:
            self.flush()
            self._file.close()

    def __enter__(self) -> StreamRowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _format_str(value: Any) -> str:
    return "" if value is None else str(value)


def _format_int(value: Any) -> str:
    return "" if value is None or value == "" else str(int(value))


def _format_ms(value: Any) -> str:
    return "" if value is None or value == "" else f"{float(value):.3f}"


def _format_bool(value: Any) -> str:
    if value is None or value == "":
        return ""
    return "true" if value else "false"


def _format_utc_cell(value: Any) -> str:
    return "" if value is None or value == "" else _format_utc(value)


_FORMAT_BY_KIND: dict[str, Callable[[Any], str]] = {
    "str": _format_str,
    "int": _format_int,
    "ms": _format_ms,
    "bool": _format_bool,
    "utc": _format_utc_cell,
}
#: The cells csv would not write as their formatter does, each with the one type whose
#: values csv writes the same. csv writes ``None`` as an empty cell and anything else as its
#: ``str()``, exactly :func:`_format_str`: str columns are left to it, int columns unless the
#: value is not an int (a bool, a float from a relayed row), utc columns when already text.
#: Fewer formatter calls per row (``bench/stream_path.py``, ``write_row``).
_WRITTEN_AS_IS: dict[str, type] = {"int": int, "utc": str}
_CELLS_TO_FORMAT: tuple[tuple[int, Callable[[Any], str], type | None], ...] = tuple(
    (index, _FORMAT_BY_KIND[kind], _WRITTEN_AS_IS.get(kind))
    for index, kind in enumerate(COLUMN_TYPES.values())
    if kind != "str"
)


def _format_utc(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give an aware one or epoch seconds")
        moment = value.astimezone(UTC)
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        return value  # already formatted (e.g. a row relayed from a worker)
    else:
        raise ValueError(f"a UTC timestamp must be epoch seconds or a datetime, got {value!r}")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_parquet_rows(run_dir: str | Path) -> Path:
    """Write ``streams.parquet`` beside ``streams.csv``: the same rows, typed, columnar.

    A soak's millions of rows are slow to parse as CSV (and large); Parquet reads in a
    fraction of the time and keeps the types. Converted in batches (``pyarrow``'s streaming
    CSV reader), so memory stays bounded whatever the row count. Written to a temporary name
    and renamed, like every file a reader parses.

    Returns:
        The Parquet file's path.

    Raises:
        UsageError: ``streams.csv`` is missing or unreadable.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    source = streams_path(run_dir)
    target = Path(run_dir) / PARQUET_FILE
    arrow_types = {"str": pa.string(), "int": pa.int64(), "ms": pa.float64(),
                   "utc": pa.timestamp("us", tz="UTC"), "bool": pa.bool_()}  # fmt: skip
    convert = pa_csv.ConvertOptions(
        column_types={c: arrow_types[k] for c, k in COLUMN_TYPES.items()},
        true_values=["true"],
        false_values=["false"],
        null_values=[""],
        strings_can_be_null=True,
    )
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        reader = pa_csv.open_csv(source, convert_options=convert)
        with pq.ParquetWriter(temporary, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except (OSError, pa.ArrowInvalid) as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"{source}: cannot convert stream rows to Parquet ({exc})") from exc
    temporary.replace(target)
    return target


def read_stream_rows(run_dir: str | Path) -> pd.DataFrame:
    """Load a run directory's stream rows with typed columns (``streams.parquet`` when it is
    at least as new as ``streams.csv``, else the CSV).

    Args:
        run_dir: the run directory.

    Returns:
        One row per stream with the columns of :data:`COLUMNS` (in that order, present even
        in an older file that lacks some): ``str`` columns as pandas ``string``, ``int`` as
        nullable ``Int64``, ``ms`` as ``float64``, ``utc`` as ``datetime64[ns, UTC]``, ``bool``
        as nullable ``boolean``. Empty cells are missing values.

    Raises:
        UsageError: the file is missing or unreadable.
    """
    import pandas as pd

    path = streams_path(run_dir)
    parquet = Path(run_dir) / PARQUET_FILE
    if parquet.exists() and (not path.exists() or parquet.stat().st_mtime >= path.stat().st_mtime):
        return _typed_parquet(pd.read_parquet(parquet))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UsageError(f"{path}: cannot read stream rows ({exc})") from exc
    for column, kind in COLUMN_TYPES.items():
        if column not in frame:
            frame[column] = pd.NA
        cells = frame[column]
        if kind == "ms":
            frame[column] = pd.to_numeric(cells).astype("float64")
        elif kind == "int":
            frame[column] = pd.to_numeric(cells).astype("Int64")
        elif kind == "utc":
            frame[column] = pd.to_datetime(cells, utc=True, format="ISO8601").astype(
                "datetime64[ns, UTC]"
            )
        elif kind == "bool":
            frame[column] = cells.map({"true": True, "false": False}).astype("boolean")
        else:
            frame[column] = cells.astype("string")
    extra = [c for c in frame.columns if c not in COLUMN_TYPES]
    return frame[list(COLUMNS) + extra]


def _typed_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """The dtypes :func:`read_stream_rows` promises, from Parquet's own."""
    import pandas as pd

    for column, kind in COLUMN_TYPES.items():
        if column not in frame:
            frame[column] = pd.NA
        if kind == "ms":
            frame[column] = frame[column].astype("float64")
        elif kind == "int":
            frame[column] = frame[column].astype("Int64")
        elif kind == "utc":
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
        elif kind == "bool":
            frame[column] = frame[column].astype("boolean")
        else:
            frame[column] = frame[column].astype("string")
    extra = [c for c in frame.columns if c not in COLUMN_TYPES]
    return frame[list(COLUMNS) + extra]
