"""The report's figures: a :class:`ReportInput` in, PNG images out. No file I/O.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``:
pyplot keeps every figure in a global registry until ``plt.close`` and picks a GUI backend
from the environment, while a bare ``Figure`` renders with Agg (``savefig`` to PNG uses the
Agg canvas), needs no backend switch that would change other code in the process, and is
freed as soon as it goes out of scope. Matplotlib's own documentation recommends this for
servers.

Every time plot shares one x axis in UTC (concise date labels), shades what lies outside the
steady state (the ramp and ``--warmup``, grey) and the buckets in which the load generator was
saturated (red), because a reader must not take either for the system's behaviour. Series are
at most ~2,000 buckets (the contract), and every list becomes one numpy array: no Python loop
runs per bucket, only per shaded span and per line.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from loadtest.analysis.series import WindowSeries
from loadtest.report.model import ReportInput

#: Metrics whose p50 / p95 / p99 are drawn over time, in this order.
TIME_METRICS: tuple[str, ...] = ("ttfc_ms", "stream_ms", "inter_chunk_ms")
#: Percentiles drawn over time, with their line colours (the tail darker).
TIME_STATS: tuple[tuple[str, str], ...] = (
    ("p50", "#4c72b0"),
    ("p95", "#dd8452"),
    ("p99", "#c44e52"),
)
#: Counters whose labelled breakdowns make the error plot.
ERROR_KEYS: tuple[str, ...] = ("streams_failed", "disconnects", "connection_failures")
#: Count keys that would give chunks/s; none is recorded today, so that line is skipped.
CHUNK_COUNT_KEYS: tuple[str, ...] = ("chunks_received", "chunks")
#: Percentile spectrum ticks: x = 1 / (1 − p), labelled with p.
SPECTRUM_TICKS: tuple[tuple[float, str], ...] = (
    (2.0, "50%"), (10.0, "90%"), (100.0, "99%"), (1_000.0, "99.9%"), (10_000.0, "99.99%"),
)  # fmt: skip
#: Error kinds drawn one line each; the rest are summed into "other" (a legend stays legible).
MAX_ERROR_LINES = 8
#: Below this many buckets, points get markers: a 5-bucket line is otherwise hard to read.
MARKER_BELOW = 40

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 3.3, 100
EXCLUDED_COLOUR, SATURATED_COLOUR = "#9e9e9e", "#e53935"
UTC = dt.UTC


@dataclass(frozen=True)
class Plot:
    """One rendered figure.

    Attributes:
        section: where it belongs in a report (``over_time``, ``spectra``, ``generator``).
        key: a stable identifier (``latency_ttfc_ms``), for anchors and tests.
        title: the figure's title, also its alt text.
        png: the PNG image.
    """

    section: str
    key: str
    title: str
    png: bytes


def render_plots(report: ReportInput) -> list[Plot]:
    """Every figure the report has data for, in reading order.

    Args:
        report: the report input; series may be empty (then only the spectra are drawn).

    Returns:
        Plots in order: latency over time per metric, throughput, open connections, errors by
        kind, a spectrum per latency metric, generator health, and a step-load run's capacity
        curve. A figure without any data is
        left out, except the error plot, which says "none" (that no error happened is news).
    """
    plots: list[Plot] = []
    timeline = _Timeline.of(report)
    if timeline is not None:
        for metric in TIME_METRICS:
            plot = _latency_over_time(timeline, metric)
            if plot is not None:
                plots.append(plot)
        plots.append(_throughput(timeline))
        if report.series.open_connections:
            plots.append(_open_connections(timeline))
        plots.append(_errors(timeline))
    for metric, points in report.spectra.items():
        plot = _spectrum(metric, points)
        if plot is not None:
            plots.append(plot)
    if timeline is not None:
        plot = _generator_health(timeline, report.summary)
        if plot is not None:
            plots.append(plot)
    if report.capacity is not None:
        plots.append(capacity_curve(report.capacity))
    return plots


# -- the shared time axis ---------------------------------------------------------------------


@dataclass
class _Timeline:
    """The series with its x coordinates and shaded spans, computed once for every plot."""

    series: WindowSeries
    span_s: float
    x: np.ndarray  # bucket midpoints, datetime64[ms]
    start: np.datetime64
    end: np.datetime64
    excluded: list[tuple[np.datetime64, np.datetime64]]
    saturated: list[tuple[np.datetime64, np.datetime64]]

    @classmethod
    def of(cls, report: ReportInput) -> _Timeline | None:
        series = report.series
        if not len(series):
            return None
        span = float(series.span_s)
        starts = np.asarray(series.start_s, dtype=float)
        first, last = float(starts[0]), float(starts[-1]) + span
        excluded: list[tuple[float, float]] = []
        steady_from, steady_to = _steady_span(report.summary, first)
        if steady_from is not None and steady_from > first:
            excluded.append((first, min(steady_from, last)))
        if steady_to is not None and steady_to < last:
            excluded.append((max(steady_to, first), last))
        return cls(
            series=series,
            span_s=span,
            x=_datetimes(starts + span / 2),
            start=_datetime(first),
            end=_datetime(last),
            excluded=[(_datetime(a), _datetime(b)) for a, b in excluded],
            saturated=[
                (_datetime(a), _datetime(b)) for a, b in _true_runs(starts, span, series.saturated)
            ],
        )

    def figure(self, title: str, rows: int = 1) -> tuple[Figure, list[Axes]]:
        """A figure of ``rows`` time axes sharing x, dated in UTC, shading already drawn."""
        figure = Figure(
            figsize=(WIDTH_IN, HEIGHT_IN if rows == 1 else 2.3 * rows + 0.6),
            dpi=DPI,
            layout="constrained",
        )
        axes = list(np.atleast_1d(figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]))
        figure.suptitle(title)
        locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=9)
        for ax in axes:
            ax.set_xlim(self.start, self.end)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
            ax.grid(True, alpha=0.3)
            for a, b in self.excluded:
                ax.axvspan(a, b, color=EXCLUDED_COLOUR, alpha=0.25, lw=0)
            for a, b in self.saturated:
                ax.axvspan(a, b, color=SATURATED_COLOUR, alpha=0.18, lw=0)
        axes[-1].set_xlabel("time (UTC)")
        return figure, axes

    def legend(
        self,
        ax: Axes,
        *,
        below: Figure | None = None,
        also: Sequence[Axes] = (),
        shading: bool = True,
    ) -> None:
        """A legend of the lines (of ``ax`` and ``also``) plus the shading drawn.

        Legends never sit on the data: ``below`` puts one under a single-axes figure (full
        width for the plot, and constrained layout makes room without touching the title);
        otherwise it goes to the right of its axes (rows of a multi-axes figure).
        """
        handles, labels = ax.get_legend_handles_labels()
        for other in also:
            more_handles, more_labels = other.get_legend_handles_labels()
            handles += more_handles
            labels += more_labels
        if shading and self.excluded:
            handles.append(Patch(color=EXCLUDED_COLOUR, alpha=0.35))
            labels.append("outside steady state")
        if shading and self.saturated:
            handles.append(Patch(color=SATURATED_COLOUR, alpha=0.3))
            labels.append("generator saturated")
        if not handles:
            return
        if below is not None:
            below.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
        else:
            ax.legend(
                handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small"
            )

    def line(self, ax: Axes, values: Sequence[float | None], **style: Any) -> None:
        """One per-bucket series; ``None`` (no sample) becomes a gap, not a zero."""
        y = np.asarray(values, dtype=float)  # None → nan
        if len(y) < MARKER_BELOW:
            style.setdefault("marker", "o")
            style.setdefault("markersize", 3)
        ax.plot(self.x, y, lw=1.3, **style)

    @property
    def bucket(self) -> str:
        return f"{self.span_s:g} s bucket"


def _steady_span(summary: Mapping[str, Any], first_s: float) -> tuple[float | None, float | None]:
    """The steady state's start and end, epoch seconds, from ``summary["steady_state"]``.

    ``from_s`` / ``to_s`` are read as epoch seconds like the series' bucket starts; a value too
    small to be a date (before 2001) is taken as seconds from the run's first bucket, so either
    reading of the key renders right. Without them, ``from_utc`` / ``to_utc`` are parsed.
    """
    steady = summary.get("steady_state") or {}
    bounds: list[float | None] = []
    for seconds_key, utc_key in (("from_s", "from_utc"), ("to_s", "to_utc")):
        value = steady.get(seconds_key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            bounds.append(float(value) if value >= 1e9 else first_s + float(value))
            continue
        stamp = steady.get(utc_key)
        try:
            parsed = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            bounds.append(None)
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        bounds.append(parsed.timestamp())
    return bounds[0], bounds[1]


def _true_runs(starts: np.ndarray, span: float, flags: Sequence[bool]) -> list[tuple[float, float]]:
    """``(start, end)`` of each run of consecutive True buckets (one span per run, not per
    bucket, so a long saturated stretch is one patch)."""
    if not flags or not any(flags):
        return []
    mask = np.zeros(len(starts) + 2, dtype=np.int8)
    mask[1 : len(flags) + 1] = np.asarray(flags[: len(starts)], dtype=bool)
    edges = np.diff(mask)
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1) - 1
    return [
        (float(starts[a]), float(starts[b]) + span)
        for a, b in zip(run_starts, run_ends, strict=True)
    ]


def _datetimes(epoch_s: np.ndarray) -> np.ndarray:
    # Millisecond datetime64: matplotlib reads it as UTC without any timezone guessing.
    return np.round(epoch_s * 1000.0).astype("datetime64[ms]")


def _datetime(epoch_s: float) -> np.datetime64:
    return np.datetime64(round(epoch_s * 1000.0), "ms")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software/date metadata: the same run renders to the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _plain(label: str) -> str:
    """A label from the data, safe from matplotlib's mathtext (``$`` starts a formula)."""
    return label.replace("$", r"\$")


# -- the figures ------------------------------------------------------------------------------


def _latency_over_time(timeline: _Timeline, metric: str) -> Plot | None:
    stats = timeline.series.percentiles.get(metric) or {}
    present = [
        (stat, colour)
        for stat, colour in TIME_STATS
        if any(v is not None for v in stats.get(stat, ()))
    ]
    if not present:
        return None
    title = f"{metric}: p50 / p95 / p99 per {timeline.bucket}"
    figure, (ax,) = timeline.figure(title)
    for stat, colour in present:
        timeline.line(ax, stats[stat], label=stat, color=colour)
    ax.set_ylabel("milliseconds")
    ax.set_ylim(bottom=0)
    timeline.legend(ax, below=figure)
    return Plot("over_time", f"latency_{metric}", title, _png(figure))


def _throughput(timeline: _Timeline) -> Plot:
    counts = timeline.series.counts
    title = f"Throughput per {timeline.bucket}"
    figure, (ax,) = timeline.figure(title)
    drew = False
    for key, label, colour in (
        ("streams_completed", "streams completed/s", "#55a868"),
        ("streams_started", "streams started/s", "#8172b3"),
        ("streams_failed", "streams failed/s", "#c44e52"),
    ):
        values = counts.get(key)
        if values and (key == "streams_completed" or any(values)):
            timeline.line(
                ax, np.asarray(values, dtype=float) / timeline.span_s, label=label, color=colour
            )
            drew = True
    ax.set_ylabel("streams / s")
    ax.set_ylim(bottom=0)
    twins: list[Axes] = []
    chunk_key = next((key for key in CHUNK_COUNT_KEYS if counts.get(key)), None)
    if chunk_key is not None:
        # Chunks run 10-100× streams: their own axis, or the stream lines would be flat.
        right = ax.twinx()
        timeline.line(
            right,
            np.asarray(counts[chunk_key], dtype=float) / timeline.span_s,
            label="chunks/s",
            color="#937860",
            linestyle="--",
        )
        right.set_ylabel("chunks / s")
        right.set_ylim(bottom=0)
        twins.append(right)
    if not drew:
        _none(ax, "no stream counted in this run")
    timeline.legend(ax, below=figure, also=twins)
    return Plot("over_time", "throughput", title, _png(figure))


def _open_connections(timeline: _Timeline) -> Plot:
    title = "Open connections (at each bucket's end)"
    figure, (ax,) = timeline.figure(title)
    timeline.line(
        ax, timeline.series.open_connections, label="open", color="#4c72b0", drawstyle="steps-mid"
    )
    ax.set_ylabel("connections")
    ax.set_ylim(bottom=0)
    timeline.legend(ax, below=figure)
    return Plot("over_time", "open_connections", title, _png(figure))


def _errors(timeline: _Timeline) -> Plot:
    """Failed streams, disconnects and handshake failures by kind, per second."""
    series = timeline.series
    lines: list[tuple[str, np.ndarray]] = []
    for key in ERROR_KEYS:
        by_label = series.breakdowns.get(key) or {}
        labelled = [
            (f"{key}: {label}", np.asarray(v, dtype=float))
            for label, v in sorted(by_label.items())
            if any(v)
        ]
        if labelled:
            lines.extend(labelled)
        elif any(series.counts.get(key) or ()):
            lines.append((key, np.asarray(series.counts[key], dtype=float)))
    lines.sort(key=lambda item: -float(item[1].sum()))
    if len(lines) > MAX_ERROR_LINES:
        rest = np.sum([values for _, values in lines[MAX_ERROR_LINES - 1 :]], axis=0)
        lines = [*lines[: MAX_ERROR_LINES - 1], ("other kinds", rest)]
    title = f"Failed streams, disconnects, handshake failures by kind, per {timeline.bucket}"
    figure, (ax,) = timeline.figure(title)
    for label, values in lines:
        timeline.line(ax, values / timeline.span_s, label=_plain(label), drawstyle="steps-mid")
    if not lines:
        _none(ax, "none in this run")
        ax.set_ylim(0, 1)
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("events / s")
    timeline.legend(ax, below=figure)
    return Plot("over_time", "errors", title, _png(figure))


def _spectrum(metric: str, points: Sequence[tuple[float, float]]) -> Plot | None:
    """HdrHistogram's percentile distribution: value against 1 / (1 − p), log x."""
    data = np.asarray(points, dtype=float).reshape(-1, 2)
    data = data[(data[:, 0] >= 0) & (data[:, 0] < 100) & np.isfinite(data[:, 1])]
    if not len(data):
        return None
    x = 1.0 / (1.0 - data[:, 0] / 100.0)
    title = f"{metric}: percentile spectrum (steady state)"
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    ax.plot(
        x,
        data[:, 1],
        lw=1.5,
        color="#4c72b0",
        marker="o" if len(x) < MARKER_BELOW else "",
        markersize=3,
    )
    ax.set_xscale("log")
    # The tail is as far as the data goes, at least to 99 %, so the 50/90/99 ticks always show.
    right = max(float(x.max()) * 1.5, 150.0)
    ax.set_xlim(1.0, right)
    shown = [(tick, label) for tick, label in SPECTRUM_TICKS if tick <= right]
    ax.xaxis.set_major_locator(FixedLocator([tick for tick, _ in shown]))
    ax.set_xticklabels([label for _, label in shown])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("percentile (x = 1 / (1 − p), log scale)")
    ax.set_ylabel("milliseconds")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    figure.suptitle(title)
    return Plot("spectra", f"spectrum_{metric}", title, _png(figure))


def _generator_health(timeline: _Timeline, summary: Mapping[str, Any]) -> Plot | None:
    """CPU share, loop-lag p99 and GC pause max, each beside its saturation threshold."""
    series = timeline.series
    thresholds: Mapping[str, Any] = (summary.get("generator") or {}).get("thresholds") or {}
    rows: list[tuple[str, Sequence[float | None], str, float | None]] = []
    cpu = series.gauges.get("cpu_share")
    if cpu and any(v is not None for v in cpu):
        rows.append(
            ("CPU share (1.0 = one core)", cpu, "CPU share", thresholds.get("cpu_share", 0.9))
        )
    lag = (series.percentiles.get("loop_lag_ms") or {}).get("p99")
    if lag and any(v is not None for v in lag):
        rows.append(("event-loop lag p99", lag, "ms", thresholds.get("loop_lag_p99_ms", 50.0)))
    gc = (series.percentiles.get("gc_pause_ms") or {}).get("max")
    if gc and any(v is not None for v in gc):
        rows.append(("GC pause max", gc, "ms", thresholds.get("gc_pause_ms", 20.0)))
    if not rows:
        return None
    title = f"Load-generator health per {timeline.bucket}"
    figure, axes = timeline.figure(title, rows=len(rows))
    for row, (ax, (label, values, unit, threshold)) in enumerate(zip(axes, rows, strict=True)):
        timeline.line(ax, values, label=label, color="#4c72b0")
        if isinstance(threshold, int | float):
            ax.axhline(
                threshold,
                color=SATURATED_COLOUR,
                lw=1,
                linestyle="--",
                label=f"saturation at {threshold:g}",
            )
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        timeline.legend(ax, shading=row == 0)  # the shading means the same in every row
    return Plot("generator", "generator_health", title, _png(figure))


def _none(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555")


def capacity_curve(capacity: Mapping[str, Any]) -> Plot:
    """Throughput and goodput (left) and p95 with its interval (right) against each step's
    load; the knee is marked, and so is the first failing step."""
    steps = list(capacity.get("steps") or [])
    open_model = capacity.get("model") == "open"
    loads = np.asarray([float(s["rate"] if open_model else s["users"]) for s in steps])
    unit = "arrivals / s" if open_model else "concurrent users"
    title = f"Capacity: throughput and p95 against {unit}"
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN + 0.6), dpi=DPI, layout="constrained")
    ax = figure.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")

    def values(key: str) -> np.ndarray:
        return np.asarray([np.nan if s.get(key) is None else s[key] for s in steps], dtype=float)

    ax.plot(loads, values("throughput_streams_per_s"), marker="o", color="#55a868",
            label="throughput (streams/s)")  # fmt: skip
    goodput = values("goodput_streams_per_s")
    if np.isfinite(goodput).any() and capacity.get("objectives"):
        ax.plot(loads, goodput, marker="o", linestyle="--", color="#8172b3",
                label="goodput (within objectives)")  # fmt: skip
    ax.set_xlabel(unit)
    ax.set_ylabel("streams / s")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    for metric, colour in (("ttfc_ms", "#dd8452"), ("stream_ms", "#c44e52")):
        entries = [(s.get("metrics") or {}).get(metric) or {} for s in steps]
        p95 = np.asarray([e.get("p95", np.nan) for e in entries], dtype=float)
        if not np.isfinite(p95).any():
            continue
        low = np.asarray([(e.get("p95_ci") or [np.nan, np.nan])[0] for e in entries])
        high = np.asarray([(e.get("p95_ci") or [np.nan, np.nan])[1] for e in entries])
        right.plot(loads, p95, marker="s", color=colour, label=f"{metric} p95 (ms)")
        right.fill_between(loads, low, high, color=colour, alpha=0.15, linewidth=0)
    right.set_ylabel("milliseconds")
    right.set_ylim(bottom=0)
    for key, label, colour in (("knee", "knee", "#2e7d32"), ("first_failing", "fails", "#c62828")):
        marked = capacity.get(key)
        if marked:
            step = steps[[s["index"] for s in steps].index(marked["index"])]
            where = float(step["rate"] if open_model else step["users"])
            ax.axvline(where, color=colour, linestyle=":", linewidth=1.5)
            ax.annotate(label, (where, 0), xytext=(3, 3), textcoords="offset points",
                        color=colour, fontsize=9)  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=8, loc="upper left")
    return Plot("capacity", "capacity_curve", title, _png(figure))
