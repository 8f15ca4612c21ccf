"""Closed windows on disk: a standard HdrHistogram interval log plus a counters file.

Two files in the run directory, both appended and flushed once per window, so a crash loses at
most the window being written:

``intervals.hlog``
    A standard HdrHistogram interval log (format version 1.2, as written by the Java
    ``HistogramLogWriter`` and read by ``hdrh.log.HistogramLogReader``, HdrHistogram's
    ``HistogramLogProcessor`` or HdrHistogramVisualizer). One *tagged* line per metric per
    window::

        Tag=ttfc_ms,1700000010.000000,1.000000,12.345,HISTFAAAA...

    fields: tag (the metric name), window start (epoch seconds; ``#[BaseTime: 0.000 ...]``
    marks timestamps as absolute), window length (s), the window's max in **ms**, and the
    histogram of **microseconds** (V2 compressed, base64). ``hdrh``'s writer cannot write tags,
    so lines are formatted here in the same layout its reader parses.

``intervals.counts.jsonl``
    One JSON object per window: ``{"start_s", "end_s", "counts", "breakdowns", "gauges",
    "out_of_range"}`` with the shapes of :meth:`MetricWindow.to_wire` (``breakdowns`` is
    ``{key: {label: n}}``; ``gauges`` ``{key: {"last", "max"}}``; ``out_of_range`` lists only
    metrics with clamped samples, which the standard histogram blob cannot carry).

Both files may hold several entries for the same window start: one per worker when the master
writes windows as they arrive, or a worker's flushed partial window and its continuation. The
reader adds entries of the same start together, exactly as HdrHistogram log tools add the
intervals of a time range, so no entry needs to wait for the others.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hdrh.log import HistogramLogWriter

from loadtest.errors import UsageError
from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.window import GaugeValue, MetricWindow

HLOG_FILE = "intervals.hlog"
COUNTS_FILE = "intervals.counts.jsonl"


class IntervalLogWriter:
    """Appends closed windows to ``intervals.hlog`` and ``intervals.counts.jsonl``.

    Args:
        run_dir: the run directory (created if missing). Existing files are appended to, and
            get their header only when new.
        start_time_s: the run's start, epoch seconds, for the log's ``#[StartTime: …]``
            header; default: now.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, run_dir: str | Path, *, start_time_s: float | None = None) -> None:
        directory = Path(run_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.hlog_path = directory / HLOG_FILE
        self.counts_path = directory / COUNTS_FILE
        self._hlog: TextIO = self.hlog_path.open("a", encoding="utf-8")
        self._counts: TextIO = self.counts_path.open("a", encoding="utf-8")
        if self._hlog.tell() == 0:
            self._write_header(time.time() if start_time_s is None else start_time_s)

    def _write_header(self, start_time_s: float) -> None:
        header = HistogramLogWriter(self._hlog)
        header.output_log_format_version()
        # hdrh's output_start_time() is broken (it calls a non-existent datetime method).
        started = datetime.fromtimestamp(start_time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._hlog.write(f"#[StartTime: {start_time_s:.3f} (seconds since epoch), {started}]\n")
        header.output_base_time(0)  # timestamps below are absolute epoch seconds
        header.output_comment(
            "[loadtest intervals: Tag=metric name; histogram values in microseconds; "
            "Interval_Max in milliseconds]"
        )
        header.output_legend()
        self._hlog.flush()

    def write(self, window: MetricWindow, notes: Iterable[str] = ()) -> None:
        """Append one window: a tagged histogram line per metric, then its counters line.

        Both files are flushed to the operating system before returning (not fsynced: a
        process crash loses nothing written, a power cut may).

        Args:
            window: a closed window; empty histograms are skipped.
            notes: why the generator was saturated in this window, if it was (written as
                ``notes``; judged here, where the window's histograms are still in memory,
                so a reader needs no per-window histogram to flag it).
        """
        length_s = max(window.end_s - window.start_s, 0.0)
        for metric in sorted(window.histograms):
            histogram = window.histograms[metric]
            if histogram.count == 0:
                continue
            blob = histogram.to_hdr_blob().decode("ascii")
            max_ms = histogram.hdr.get_max_value() / 1000.0
            self._hlog.write(
                f"Tag={metric},{window.start_s:.6f},{length_s:.6f},{max_ms:.3f},{blob}\n"
            )
        self._hlog.flush()
        line = {
            "start_s": window.start_s,
            "end_s": window.end_s,
            "counts": window.counts,
            "breakdowns": window.breakdowns,
            "gauges": {k: {"last": g.last, "max": g.max} for k, g in window.gauges.items()},
            "out_of_range": {m: n for m, n in window.out_of_range().items() if n},
            "notes": list(notes),
        }
        self._counts.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")
        self._counts.flush()

    def write_all(self, windows: Iterable[MetricWindow]) -> None:
        """:meth:`write` each window, in the given order."""
        for window in windows:
            self.write(window)

    def close(self) -> None:
        """Close both files (idempotent)."""
        self._hlog.close()
        self._counts.close()

    def __enter__(self) -> IntervalLogWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class IntervalLog:
    """What :func:`read_interval_log` rebuilt.

    Attributes:
        aggregate: every window read, merged per start, plus totals.
        skipped_lines: malformed lines ignored (normally only a last line cut by a crash).
    """

    aggregate: RunAggregate = field(default_factory=RunAggregate)
    skipped_lines: int = 0

    def percentiles(self, start_s: float, end_s: float | None = None) -> dict[str, Any]:
        """Per-metric summaries of one window, or of every window starting in a range.

        Args:
            start_s: the window start, or the range start (epoch seconds).
            end_s: the range end (exclusive); None for the single window at ``start_s``.

        Returns:
            metric → :meth:`LatencyHistogram.summary_ms`, for metrics with samples.
        """
        if end_s is None:
            window = self.aggregate.window(start_s)
            if window is None:
                return {}
        else:
            window = self.aggregate.between(start_s, end_s)
        return {m: h.summary_ms() for m, h in sorted(window.histograms.items()) if h.count}


def read_interval_log(
    run_dir: str | Path,
    *,
    metrics: Iterable[str] | None = None,
    start_s: float = -math.inf,
    end_s: float = math.inf,
) -> IntervalLog:
    """Rebuild windows from a run directory's interval files.

    Args:
        run_dir: the run directory.
        metrics: only these histograms (default: all); lines of other metrics are not decoded,
            which keeps reading a long soak for one metric fast. Counters are always read.
        start_s: keep windows starting at or after this (epoch seconds).
        end_s: keep windows starting before this.

    Returns:
        The windows, merged per start, and the count of skipped malformed lines.

    Raises:
        UsageError: either file is missing or unreadable.
    """
    directory = Path(run_dir)
    wanted = None if metrics is None else frozenset(metrics)
    result = IntervalLog()
    try:
        with (directory / HLOG_FILE).open(encoding="utf-8") as hlog:
            _read_hlog(hlog, result, wanted, start_s, end_s)
        with (directory / COUNTS_FILE).open(encoding="utf-8") as counts:
            _read_counts(counts, result, wanted, start_s, end_s)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot read interval log ({exc.strerror or exc})") from exc
    return result


def hlog_lines(lines: Iterable[str], skipped: list[int]) -> Iterator[tuple[str, float, float, str]]:
    """``(metric, start_s, length_s, blob)`` of each well-formed tagged interval line.

    Args:
        lines: the log's lines.
        skipped: a one-item counter, incremented for each damaged line (normally only a last
            line cut by a crash).
    """
    base_time_s = 0.0
    for line in lines:
        if line.startswith("#"):
            if line.startswith("#[BaseTime:"):
                try:
                    base_time_s = float(line.split()[1])
                except (IndexError, ValueError):
                    skipped[0] += 1
            continue
        if line.startswith('"') or not line.strip():
            continue  # the legend line
        tag, _, rest = line[4:].partition(",") if line.startswith("Tag=") else (None, "", line)
        fields = rest.rstrip("\n").split(",")
        try:
            if tag is None or len(fields) != 4:
                raise ValueError("not a tagged interval line")
            yield tag, float(fields[0]) + base_time_s, float(fields[1]), fields[3]
        except ValueError:
            skipped[0] += 1


def _read_hlog(
    lines: Iterable[str],
    result: IntervalLog,
    wanted: frozenset[str] | None,
    start_s: float,
    end_s: float,
) -> None:
    skipped = [0]
    for tag, start, length, blob in hlog_lines(lines, skipped):
        if not start_s <= start < end_s or (wanted is not None and tag not in wanted):
            continue
        try:
            histogram = LatencyHistogram.decode(blob.encode("ascii"))
        except ValueError:  # a damaged line: decode() turns hdrh's assorted errors into this
            skipped[0] += 1
            continue
        window = MetricWindow(start, start + length)
        window.histograms[tag] = histogram
        result.aggregate.add(window, copy=False)
    result.skipped_lines += skipped[0]


def counts_window(entry: dict[str, Any], wanted: frozenset[str] | None = None) -> MetricWindow:
    """One ``intervals.counts.jsonl`` entry as a window: counts, breakdowns, gauges, and the
    out-of-range tallies (as empty histograms that carry only them).

    Raises:
        ValueError, TypeError, KeyError, AttributeError: a damaged entry.
    """
    window = MetricWindow(float(entry["start_s"]), float(entry["end_s"]))
    window.counts = {k: int(n) for k, n in entry.get("counts", {}).items()}
    window.breakdowns = {
        k: {label: int(n) for label, n in labels.items()}
        for k, labels in entry.get("breakdowns", {}).items()
    }
    window.gauges = {
        k: GaugeValue(float(g["last"]), float(g["max"])) for k, g in entry.get("gauges", {}).items()
    }
    for metric, n in entry.get("out_of_range", {}).items():
        if wanted is not None and metric not in wanted:
            continue
        clamped = LatencyHistogram()
        clamped.out_of_range = int(n)
        window.histograms[metric] = clamped
    return window


def counts_lines(
    lines: Iterable[str], skipped: list[int], wanted: frozenset[str] | None = None
) -> Iterator[tuple[dict[str, Any], MetricWindow]]:
    """``(entry, window)`` of each well-formed ``intervals.counts.jsonl`` line, the window as
    :func:`counts_window` builds it; the counts-file twin of :func:`hlog_lines`.

    Args:
        lines: the file's lines.
        skipped: a one-item counter, incremented for each damaged line.
        wanted: out-of-range tallies of only these metrics (default: all).
    """
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            window = counts_window(entry, wanted)
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped[0] += 1
            continue
        yield entry, window


def _read_counts(
    lines: Iterable[str],
    result: IntervalLog,
    wanted: frozenset[str] | None,
    start_s: float,
    end_s: float,
) -> None:
    skipped = [0]
    for _entry, window in counts_lines(lines, skipped, wanted):
        if start_s <= window.start_s < end_s:
            result.aggregate.add(window, copy=False)
    result.skipped_lines += skipped[0]
