"""Soak drift: a trend in the target's per-bucket p95 is found with its slope; noise is not; the
generator's own leak is reported apart from the target."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.analysis.drift import (
    MIN_BUCKETS,
    drift_span,
    rolling_min,
    run_drift,
    trend_of,
)
from loadtest.analysis.summary import read_run_dir
from loadtest.metrics.window import MetricWindow
from tests.analysis.rundirs import write_run_dir

SOAK_S = 600  # one-second windows: the plot series has 600 buckets of 1 s


def soak(
    ttfc_ms: Callable[[int], float],
    *,
    seed: int = 1,
    rss_mb: Callable[[int], float] = lambda second: 120.0,
    failed: Callable[[int], int] = lambda second: 0,
) -> Callable[[MetricWindow, int], None]:
    """Twenty streams a second whose TTFC follows ``ttfc_ms(second)`` plus noise of σ = 40 ms
    (additive, so each second's p95 moves exactly as the centre does)."""
    rng = np.random.default_rng(seed)

    def fill(window: MetricWindow, second: int) -> None:
        centre = ttfc_ms(second)
        for value in centre + 40.0 * rng.standard_normal(20):
            window.record("ttfc_ms", max(1.0, float(value)))
            window.record("stream_ms", max(1.0, float(value)) + 900.0)
        window.count("streams_started", 20)
        window.count("streams_completed", 20 - failed(second))
        window.count("streams_failed", failed(second))
        window.gauge("rss_mb", rss_mb(second))

    return fill


def drift_of(run_dir: Path) -> dict:
    return run_drift(read_run_dir(run_dir)[2])


def test_a_soak_drifting_two_ms_a_second_is_drift_with_its_slope(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", SOAK_S, soak(lambda s: 400.0 + 2.0 * s))
    drift = drift_of(run)
    ttfc = drift["metrics"]["ttfc_ms"]
    assert drift["verdict"] == "drift"
    assert ttfc["verdict"] == "drift" and ttfc["direction"] == "rising" and ttfc["worse"]
    assert ttfc["slope_ms_per_h"] == pytest.approx(7200.0, rel=0.10)
    low, high = ttfc["slope_ci_ms_per_h"]
    assert low < 7200.0 < high or ttfc["slope_ms_per_h"] == pytest.approx(7200.0, rel=0.05)
    assert ttfc["p_value"] < 0.001
    assert ttfc["windows"] == SOAK_S
    assert drift["sentence"].startswith("drift: ttfc_ms p95 +7,")
    assert "ms/h (95 % CI +" in drift["sentence"]
    assert drift["metrics"]["error_rate"]["verdict"] == "no drift", "constant 0: nothing to find"
    json.dumps(drift)  # the report writes it as it is


def test_a_flat_soak_with_noise_does_not_drift(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", SOAK_S, soak(lambda s: 400.0, seed=3))
    drift = drift_of(run)
    assert drift["verdict"] == "no drift"
    assert drift["metrics"]["ttfc_ms"]["verdict"] == "no drift"
    assert drift["metrics"]["stream_ms"]["verdict"] == "no drift"
    assert drift["sentence"].startswith("no drift in ttfc_ms p95, stream_ms p95")
    assert "inter_chunk_ms" not in drift["metrics"], "never recorded: not tested"


def test_a_generator_memory_ramp_is_reported_apart_from_the_target(tmp_path: Path) -> None:
    # +0.05 MB/s (180 MB/h) under a garbage-collector sawtooth of 40 MB every 30 s.
    def rss(second: int) -> float:
        return 150.0 + 0.05 * second + 40.0 * ((second % 30) / 30.0)

    run = write_run_dir(tmp_path / "run", SOAK_S, soak(lambda s: 400.0, rss_mb=rss))
    drift = drift_of(run)
    memory = drift["generator"]
    assert drift["verdict"] == "no drift", "the target did not drift"
    assert memory["verdict"] == "drift" and memory["worse"]
    assert memory["slope_mb_per_h"] == pytest.approx(180.0, rel=0.10)
    assert memory["sentence"].startswith("the load generator's memory grew +1")
    assert memory["sentence"].endswith("the tool, not the target")
    assert "memory" not in drift["sentence"]


def test_a_rising_error_rate_is_drift_in_percentage_points(tmp_path: Path) -> None:
    # One failure in 20 every 20th second at first, every other second at the end.
    def failures(second: int) -> int:
        return 1 if second % max(2, 20 - second // 30) == 0 else 0

    run = write_run_dir(tmp_path / "run", SOAK_S, soak(lambda s: 400.0, failed=failures))
    errors = drift_of(run)["metrics"]["error_rate"]
    assert errors["verdict"] == "drift" and errors["worse"]
    assert errors["slope_ms_per_h"] is None and errors["slope_per_h"] > 0


def test_a_short_run_has_no_drift_section(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", MIN_BUCKETS - 1, soak(lambda s: 400.0))
    assert drift_of(run) is None


def test_too_few_buckets_with_a_value_are_inconclusive() -> None:
    hours = np.arange(40) / 3600.0
    values = [math.nan] * 20 + [float(v) for v in range(20)]
    result = trend_of(hours, values, unit="ms", stat="p95")
    assert result["verdict"] == "inconclusive"
    assert "20 buckets" in result["reason"]


def test_minute_buckets_for_runs_over_an_hour() -> None:
    assert drift_span(1800.0, 1.0) is None
    assert drift_span(8 * 3600.0, 1.0) == 60.0
    assert drift_span(8 * 3600.0, 7.0) is None, "60 s is no whole number of 7 s windows"
    assert drift_span(48 * 3600.0, 1.0) is None, "2,880 minute buckets: the plot series instead"


def test_the_rolling_minimum_keeps_the_floor_of_a_sawtooth() -> None:
    values = np.array([5.0, 9.0, 1.0, 7.0, math.nan, 3.0])
    assert rolling_min(values, 3).tolist() == [1.0, 1.0, 1.0, 3.0]


def test_the_report_of_a_long_enough_run_carries_its_drift(tmp_path: Path) -> None:
    from loadtest.report.rebuild import rebuild

    run = write_run_dir(tmp_path / "run", 120, soak(lambda s: 400.0 + 2.0 * s))
    summary = rebuild(run, formats=("md", "json"))
    assert "drift" not in summary, "summary.json keeps the contract's keys; drift is a report's"
    report = json.loads((run / "report.json").read_text())
    assert report["drift"]["verdict"] == "drift"
    assert report["drift"]["metrics"]["ttfc_ms"]["windows"] == 120
    markdown = (run / "report.md").read_text()
    heading = "**Drift** (120 buckets of 1 s of the steady state). drift: ttfc\\_ms p95 +7,"
    assert heading in markdown
    assert "| `ttfc_ms p95` |" not in markdown  # rows are plain text, escaped
    assert "| ttfc\\_ms p95 | drift (rising) | +7," in markdown


def test_the_report_of_a_short_run_has_drift_null(tmp_path: Path) -> None:
    from loadtest.report.rebuild import rebuild

    run = write_run_dir(tmp_path / "run", 20, soak(lambda s: 400.0))
    rebuild(run, formats=("md", "json"))
    assert json.loads((run / "report.json").read_text())["drift"] is None
    assert "**Drift**" not in (run / "report.md").read_text()
