"""The figures: which are drawn, what is shaded, and how time is read."""

from __future__ import annotations

from loadtest.analysis.series import WindowSeries
from loadtest.report.model import ReportInput
from loadtest.report.plots import _steady_span, _Timeline, _true_runs, render_plots
from tests.report.synthetic import RAMP_S, START_S, report_input

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_figure_of_a_full_run_is_a_png_in_reading_order() -> None:
    plots = render_plots(report_input())
    assert [plot.key for plot in plots] == [
        "latency_ttfc_ms", "latency_stream_ms", "latency_inter_chunk_ms", "throughput",
        "open_connections", "errors", "spectrum_ttfc_ms", "spectrum_stream_ms",
        "spectrum_inter_chunk_ms", "generator_health",
    ]  # fmt: skip
    assert all(plot.png.startswith(PNG) for plot in plots)


def test_the_ramp_and_the_saturated_stall_are_the_shaded_spans() -> None:
    timeline = _Timeline.of(report_input())
    assert timeline is not None
    [(ramp_from, ramp_to)] = timeline.excluded
    assert (ramp_to - ramp_from).astype(int) == RAMP_S * 1000
    [(stall_from, stall_to)] = timeline.saturated
    assert (stall_to - stall_from).astype(int) == 10 * 1000


def test_saturated_runs_are_one_span_each() -> None:
    starts = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    flags = [True, True, False, True, False, True]
    assert _true_runs(starts, 1.0, flags) == [(0.0, 2.0), (3.0, 4.0), (5.0, 6.0)]


def test_steady_state_bounds_read_as_epoch_offset_or_utc() -> None:
    assert _steady_span({"steady_state": {"from_s": START_S + 4}}, START_S) == (START_S + 4, None)
    assert _steady_span({"steady_state": {"from_s": 4.0}}, START_S) == (START_S + 4, None)
    utc = {"steady_state": {"from_utc": "2026-12-01T21:20:20Z"}}
    assert _steady_span(utc, START_S)[0] == START_S + 20
    assert _steady_span({}, START_S) == (None, None)


def test_a_clean_run_still_shows_an_error_figure_saying_none() -> None:
    full = report_input(buckets=60)
    clean = WindowSeries(
        span_s=1.0,
        start_s=full.series.start_s,
        percentiles={"ttfc_ms": full.series.percentiles["ttfc_ms"]},
        counts={"streams_completed": [10] * 60},
    )
    plots = render_plots(ReportInput(summary={}, run={}, series=clean))
    assert [plot.key for plot in plots] == ["latency_ttfc_ms", "throughput", "errors"]
