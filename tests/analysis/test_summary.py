"""summary.json is a pure function of the run directory: steady state, totals, the decision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.analysis.summary import build_summary
from loadtest.metrics.window import MetricWindow
from tests.analysis.rundirs import START, write_run_dir


def ramp_then_steady(window: MetricWindow, second: int) -> None:
    """10 s of ramp with 900 ms first chunks, then 50 ms; 10 streams a second throughout."""
    ttfc = 900.0 if second < 10 else 50.0
    for _ in range(10):
        window.record("ttfc_ms", ttfc)
    window.count("streams_started", 10)
    window.count("streams_completed", 10)
    window.count("connections_opened", 1 if second < 5 else 0)


def test_headline_metrics_leave_out_the_ramp_and_the_warmup(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 60, ramp_then_steady, spawned_after_s=5, warmup_s=5)
    summary = build_summary(run)
    assert summary["metrics"]["ttfc_ms"]["count"] == 500, "seconds 10–59 only"
    assert summary["metrics"]["ttfc_ms"]["max"] == pytest.approx(50.0, rel=0.01)
    assert summary["metrics_all"]["ttfc_ms"]["count"] == 600
    assert summary["metrics_all"]["ttfc_ms"]["max"] == pytest.approx(900.0, rel=0.01)
    steady = summary["steady_state"]
    assert steady["from_s"] == START + 10 and steady["to_s"] == START + 60
    assert steady["excluded_s"] == 10.0
    assert steady["from_utc"] == "2027-01-15T08:00:10.000000Z"


def test_the_steady_state_waits_for_the_ramps_first_connects(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 60, ramp_then_steady, spawned_after_s=2,
                        connected_after_s=9.5, warmup_s=0)
    steady = build_summary(run)["steady_state"]
    assert steady["from_s"] == START + 10, "9.5 s rounded up to a whole bucket"
    assert steady["counts"]["connections_opened"] == 0


def test_a_run_json_without_the_ramp_moment_starts_at_spawning_complete(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 60, ramp_then_steady, spawned_after_s=7)
    assert build_summary(run)["steady_state"]["from_s"] == START + 7


def test_counts_cover_the_whole_run(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 60, ramp_then_steady, spawned_after_s=5)
    summary = build_summary(run)
    assert summary["counts"]["streams_completed"] == 600
    assert summary["counts"]["connections_opened"] == 5
    assert summary["duration_s"] == 60.0


def test_saturated_windows_come_from_their_notes(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 20, ramp_then_steady,
                        notes=lambda second: ["cpu_share 0.97 >= 0.90"] if second == 7 else [])
    generator = build_summary(run)["generator"]
    assert generator["saturated"] is True
    assert generator["saturated_windows"] == [START + 7]


def test_the_outcome_the_run_recorded_decides_the_marks(tmp_path: Path) -> None:
    lost = {"workers_lost": ["vm-7"], "reason": "1 worker(s) stopped sending heartbeats"}
    run = write_run_dir(tmp_path / "run", 10, ramp_then_steady,
                        outcome={"interrupted_by": "SIGTERM", "stopped": None, "incomplete": lost})
    summary = build_summary(run)
    assert summary["interrupted"] is True and summary["interrupted_by"] == "SIGTERM"
    assert summary["incomplete"] == lost


def test_a_run_that_completed_nothing_fails_the_builtin_gate(tmp_path: Path) -> None:
    def nothing_completes(window: MetricWindow, second: int) -> None:
        window.count("streams_started", 2)
        window.count("streams_failed", 2, by="timeout")

    summary = build_summary(write_run_dir(tmp_path / "run", 10, nothing_completes))
    assert summary["slo"]["verdict"] == "fail"
    assert summary["slo"]["checks"][0]["check"] == "streams_completed > 0"


def test_a_day_of_windows_is_read_in_bounded_series(tmp_path: Path) -> None:
    def sparse(window: MetricWindow, second: int) -> None:
        if second % 60 == 0:
            window.record("ttfc_ms", 50.0)
            window.count("streams_completed")

    run = write_run_dir(tmp_path / "run", 6 * 3600, sparse)
    from loadtest.analysis.summary import read_run_dir

    _, _, read = read_run_dir(run)
    plot = read.series[read.plot_span_s]
    assert len(plot) <= 2000
    assert sum(plot.counts["streams_completed"]) == 360
    assert sum(v or 0 for v in plot.percentiles["ttfc_ms"]["count"]) == 360


def test_loadtest_report_rebuilds_a_deleted_summary_identically(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", 30, ramp_then_steady, spawned_after_s=2)
    report = [sys.executable, "-m", "loadtest.cli", "report", str(run), "--format", "json",
              "--quiet"]  # fmt: skip
    first = subprocess.run(report, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = (run / "summary.json").read_bytes()
    (run / "summary.json").unlink()
    again = subprocess.run(report, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert (run / "summary.json").read_bytes() == before
    assert json.loads(before)["schema"] == "loadtest.summary/1"


def test_the_terminal_table_shows_the_steady_state_percentiles(tmp_path: Path) -> None:
    from loadtest.report.table import render_percentile_table

    run = write_run_dir(tmp_path / "run", 60, ramp_then_steady, spawned_after_s=5, warmup_s=5)
    lines = render_percentile_table(build_summary(run)).splitlines()
    assert lines[0].startswith("Steady state 2027-01-15T08:00:10.000000Z")
    [row] = [line.split() for line in lines if line.startswith("ttfc_ms ")]
    count, *percentiles = row[1:]
    assert count == "500"
    assert all(float(v) == pytest.approx(50.0, rel=0.001) for v in percentiles)
    assert "streams_completed 600" in "\n".join(lines), "counts: the whole run"
