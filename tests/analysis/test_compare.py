"""Comparing runs: deltas with intervals from resampling time windows, and cautious verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.analysis.buckets import (
    bootstrap_percentiles_ms,
    bucket_span,
    pooled_percentiles_ms,
    read_bucket_histograms,
)
from loadtest.analysis.compare import DEFAULT_SEED, compare_runs, exit_code, verdict
from loadtest.analysis.intervals import proportion_difference_interval
from loadtest.analysis.summary import build_summary
from loadtest.errors import UsageError
from loadtest.metrics.interval_log import IntervalLogWriter
from loadtest.metrics.window import MetricWindow
from loadtest.rundir import write_json
from tests.analysis.rundirs import START, write_run_dir

STREAMS_PER_S = 50


def chat(ttfc_ms: float, seed: int, *, failed_per_s: int = 0, gaps: bool = True
         ) -> Callable[[MetricWindow, int], None]:  # fmt: skip
    """50 streams a second: first chunk log-normal around ``ttfc_ms`` (σ 0.25), stream 10×
    that, a few chunk gaps each; ``failed_per_s`` of them fail."""
    rng = np.random.default_rng(seed)

    def fill(window: MetricWindow, _second: int) -> None:
        ttfc = rng.lognormal(np.log(ttfc_ms), 0.25, STREAMS_PER_S)
        window.record_many("ttfc_ms", ttfc.tolist())
        window.record_many("stream_ms", (ttfc * 10).tolist())
        if gaps:
            window.record_many("inter_chunk_ms", rng.exponential(20.0, 100).tolist())
        window.count("streams_started", STREAMS_PER_S)
        window.count("streams_completed", STREAMS_PER_S - failed_per_s)
        if failed_per_s:
            window.count("streams_failed", failed_per_s)

    return fill


def chat_run(path: Path, ttfc_ms: float, seed: int, *, seconds: int = 60, **kwargs: int) -> Path:
    return write_run_dir(path, seconds, chat(ttfc_ms, seed, **kwargs))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    made = {
        "fast": chat_run(root / "fast", 50.0, seed=1),
        "fast_again": chat_run(root / "fast_again", 50.0, seed=2),
        "slow": chat_run(root / "slow", 80.0, seed=3),
        "failing": chat_run(root / "failing", 50.0, seed=4, failed_per_s=5),
        "no_gaps": chat_run(root / "no_gaps", 50.0, seed=5, gaps=False),
    }
    for seed in range(3):
        made[f"base{seed}"] = chat_run(root / f"base{seed}", 50.0, seed=10 + seed)
        made[f"cand{seed}"] = chat_run(root / f"cand{seed}", 80.0, seed=20 + seed)
    return made


def verdicts(document: dict, metric: str = "ttfc_ms") -> dict[str, str]:
    return {stat: entry["verdict"] for stat, entry in document["metrics"][metric].items()}


# -- the three answers ---------------------------------------------------------------------


def test_a_50ms_to_80ms_first_chunk_regresses_at_every_percentile(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["fast"]], [runs["slow"]])
    assert verdicts(document) == {"p50": "regressed", "p95": "regressed", "p99": "regressed"}
    p50 = document["metrics"]["ttfc_ms"]["p50"]
    assert p50["base"] == pytest.approx(50, rel=0.03)
    assert p50["candidate"] == pytest.approx(80, rel=0.03)
    assert p50["delta_pct"] == pytest.approx(60, abs=4)
    low, high = p50["ci"]
    assert 0 < low < p50["delta"] < high
    assert document["verdict"] == "regressed" and exit_code(document) == 4
    assert "ttfc_ms.p95" in document["regressions"]


def test_two_runs_of_the_same_distribution_are_unchanged(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["fast"]], [runs["fast_again"]])
    for metric in ("ttfc_ms", "stream_ms", "inter_chunk_ms", "error_rate"):
        assert set(verdicts(document, metric).values()) == {"unchanged"}, metric
    assert document["verdict"] == "unchanged" and exit_code(document) == 0
    p50 = document["metrics"]["ttfc_ms"]["p50"]
    assert p50["ci"][0] < 0 < p50["ci"][1], "the same distribution: the interval holds 0"


def test_an_improvement_from_80ms_to_50ms_is_improved_and_exits_0(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["slow"]], [runs["fast"]])
    assert verdicts(document) == {"p50": "improved", "p95": "improved", "p99": "improved"}
    assert document["verdict"] == "improved" and exit_code(document) == 0
    assert document["regressions"] == []


# -- how cautious, and why -----------------------------------------------------------------


def test_one_run_per_side_says_its_intervals_are_within_run_only(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["fast"]], [runs["slow"]])
    assert document["method"]["cautious"] is True
    assert document["notes"][0].startswith("single run per side: run-to-run spread unknown, "
                                           "intervals from within-run resampling only")  # fmt: skip
    p95 = document["metrics"]["ttfc_ms"]["p95"]
    width = p95["ci"][1] - p95["ci"][0]
    assert p95["required_change"] == pytest.approx(max(0.05 * p95["base"], width), abs=0.002)
    assert p95["ci_from"] == "windows" and p95["ci_runs"] is None


def test_a_single_run_must_change_by_more_than_its_interval_is_wide() -> None:
    # +10 % of 100 ms, interval +2 … +14 (excludes 0, width 12 > the 10 ms delta)
    assert verdict(10.0, 100.0, (2.0, 14.0), 5.0, cautious=True) == "unchanged"
    assert verdict(10.0, 100.0, (2.0, 14.0), 5.0, cautious=False) == "regressed"
    assert verdict(13.0, 100.0, (12.0, 14.0), 5.0, cautious=True) == "regressed"
    # the threshold applies on top: +4 % never counts at 5 %, however narrow the interval
    assert verdict(4.0, 100.0, (3.9, 4.1), 5.0, cautious=False) == "unchanged"
    # an interval holding 0 never counts, however large the delta
    assert verdict(50.0, 100.0, (-1.0, 101.0), 5.0, cautious=False) == "unchanged"
    assert verdict(-30.0, 100.0, (-32.0, -28.0), 5.0, cautious=True) == "improved"
    assert verdict(30.0, 100.0, None, 5.0, cautious=False) == "unchanged"


def test_three_runs_per_side_give_mean_sd_cv_and_a_welch_interval(runs: dict[str, Path]) -> None:
    base = [runs[f"base{i}"] for i in range(3)]
    candidate = [runs[f"cand{i}"] for i in range(3)]
    document = compare_runs(base, candidate)
    p95 = document["metrics"]["ttfc_ms"]["p95"]
    values = [build_summary(run)["metrics"]["ttfc_ms"]["p95"] for run in base]
    spread = p95["runs"]["base"]
    assert spread["runs"] == 3 and spread["values"] == values
    assert spread["mean"] == pytest.approx(np.mean(values), abs=0.001)
    assert spread["sd"] == pytest.approx(np.std(values, ddof=1), abs=0.001)
    assert spread["cv"] == pytest.approx(spread["sd"] / spread["mean"], abs=1e-4)
    low, high = spread["ci"]
    assert low < spread["mean"] < high
    assert p95["base"] == spread["mean"]
    assert p95["ci_runs"] is not None and p95["ci_windows"] is not None
    widths = {name: p95[f"ci_{name}"][1] - p95[f"ci_{name}"][0] for name in ("runs", "windows")}
    assert p95["ci_from"] == max(widths, key=widths.__getitem__), "the wider interval is used"
    assert document["method"]["cautious"] is False
    assert not any(note.startswith("single run") for note in document["notes"])
    assert document["verdict"] == "regressed"


def test_one_base_run_against_several_borrows_their_spread_and_stays_cautious(
    runs: dict[str, Path],
) -> None:
    document = compare_runs([runs["fast"]], [runs[f"cand{i}"] for i in range(3)])
    p50 = document["metrics"]["ttfc_ms"]["p50"]
    assert p50["ci_runs"] is not None, "the candidate side's spread, assumed for the base too"
    assert p50["runs"]["base"]["sd"] is None and p50["runs"]["candidate"]["sd"] > 0
    assert document["method"]["cautious"] is True
    assert "run-to-run spread unknown on the base side" in document["notes"][0]


# -- the block bootstrap -------------------------------------------------------------------


def test_pooling_every_bucket_once_gives_the_summary_exactly(runs: dict[str, Path]) -> None:
    summary = build_summary(runs["fast"])
    steady = summary["steady_state"]
    histograms, skipped = read_bucket_histograms(
        runs["fast"], ["ttfc_ms", "inter_chunk_ms"], from_s=steady["from_s"],
        to_s=steady["to_s"], bucket_s=bucket_span(60, 1.0),
    )  # fmt: skip
    assert skipped == 0
    for metric in ("ttfc_ms", "inter_chunk_ms"):
        assert histograms[metric].buckets == 12, "60 s in 5 s buckets"
        highest_us, matrix = histograms[metric].dense()
        everything = pooled_percentiles_ms(highest_us, matrix.sum(axis=0, keepdims=True),
                                           [50.0, 95.0, 99.0])[0]  # fmt: skip
        expected = summary["metrics"][metric]
        assert everything.tolist() == [expected["p50"], expected["p95"], expected["p99"]]
        assert histograms[metric].total == expected["count"]


def test_slow_spells_widen_the_interval_where_resampling_requests_would_not(
    tmp_path: Path,
) -> None:
    """Two runs with the same 50/50 mix of 40 ms and 60 ms first chunks: in one every second
    mixes them, in the other whole 5 s spells are slow. Only the second varies from bucket to
    bucket, so only its resampled median moves: the spread a request bootstrap misses."""
    spells = np.random.default_rng(7).permutation([True] * 6 + [False] * 6)

    def mixed(window: MetricWindow, _second: int) -> None:
        window.record_many("ttfc_ms", [40.0, 60.0] * 25)

    def spelled(window: MetricWindow, second: int) -> None:
        window.record_many("ttfc_ms", [60.0 if spells[second // 5] else 40.0] * 50)

    widths = {}
    for name, fill in (("mixed", mixed), ("spelled", spelled)):
        run = write_run_dir(tmp_path / name, 60, fill)
        histograms, _ = read_bucket_histograms(run, ["ttfc_ms"], from_s=START,
                                               to_s=START + 60, bucket_s=5.0)  # fmt: skip
        highest_us, matrix = histograms["ttfc_ms"].dense()
        draws = bootstrap_percentiles_ms(highest_us, matrix, [50.0], resamples=500,
                                         rng=np.random.default_rng(0))[:, 0]  # fmt: skip
        widths[name] = float(np.percentile(draws, 97.5) - np.percentile(draws, 2.5))
    assert widths["mixed"] == 0.0
    assert widths["spelled"] == pytest.approx(20.0, abs=0.1), "the median flips 40 ↔ 60 ms"


def test_the_same_inputs_and_seed_give_the_same_document(runs: dict[str, Path]) -> None:
    first = compare_runs([runs["fast"]], [runs["fast_again"]], resamples=300)
    again = compare_runs([runs["fast"]], [runs["fast_again"]], resamples=300)
    assert json.dumps(first) == json.dumps(again)
    assert first["method"]["seed"] == DEFAULT_SEED
    other = compare_runs([runs["fast"]], [runs["fast_again"]], resamples=300, seed=1)
    assert other["metrics"]["ttfc_ms"]["p99"]["ci"] != first["metrics"]["ttfc_ms"]["p99"]["ci"]


def test_buckets_are_30s_when_a_run_has_ten_of_them_else_shorter_or_longer() -> None:
    assert bucket_span(3600, 1.0) == 30.0
    assert bucket_span(300, 1.0) == 30.0
    assert bucket_span(299, 1.0) == 15.0
    assert bucket_span(60, 1.0) == 5.0
    assert bucket_span(8, 1.0) == 1.0, "too short for ten of anything: the run's own windows"
    assert bucket_span(60, 10.0) == 10.0, "whole windows only"
    assert bucket_span(86_400, 1.0) == 120.0, "a day: at most 1,000 buckets"


def test_a_line_arriving_long_after_its_bucket_closed_still_counts(tmp_path: Path) -> None:
    run = tmp_path / "late"
    with IntervalLogWriter(run, start_time_s=START) as log:
        for second in [*range(1, 200), 0]:  # window 0 written 199 s late (> LATENESS_S)
            window = MetricWindow(START + second, START + second + 1)
            window.record("ttfc_ms", 100.0 if second == 0 else 10.0)
            log.write(window)
    histograms, _ = read_bucket_histograms(run, ["ttfc_ms"], from_s=START, to_s=START + 200,
                                           bucket_s=10.0)  # fmt: skip
    counts = [int(c.sum()) for c in histograms["ttfc_ms"].counts]
    assert counts == [10] * 20
    highest_us, matrix = histograms["ttfc_ms"].dense()
    assert pooled_percentiles_ms(highest_us, matrix[:1], [100.0])[0, 0] == pytest.approx(100, 0.01)


# -- the error rate ------------------------------------------------------------------------


def test_a_rise_in_failed_streams_regresses_the_error_rate(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["fast"]], [runs["failing"]])
    entry = document["metrics"]["error_rate"]["value"]
    assert entry["base"] == 0.0 and entry["candidate"] == pytest.approx(0.1)
    assert entry["failed"] == {"base": 0, "candidate": 300}
    assert entry["settled"] == {"base": 3000, "candidate": 3000}
    assert entry["ci_from"] == "proportions" and entry["ci"][0] > 0
    assert entry["verdict"] == "regressed" and "error_rate.value" in document["regressions"]


def test_the_two_proportion_interval_holds_at_zero_failures() -> None:
    low, high = proportion_difference_interval((0, 3000), (0, 3000))
    assert low < 0 < high and high == pytest.approx(0.00128, abs=0.00002)
    low, high = proportion_difference_interval((0, 10_000), (1, 10_000))
    assert low < 0 < high, "one failure in 10,000 after none is no evidence"
    low, _ = proportion_difference_interval((30, 3000), (90, 3000))
    assert low > 0


# -- what it reads, and what it refuses ----------------------------------------------------


def test_the_values_come_from_summary_json_when_the_run_has_one(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    copy = chat_run(tmp_path / "with_summary", 50.0, seed=1)
    summary = build_summary(copy)
    summary["metrics"]["ttfc_ms"]["p50"] = 51.0  # as if written from other data
    write_json(copy / "summary.json", summary)
    document = compare_runs([copy], [runs["fast_again"]])
    assert document["metrics"]["ttfc_ms"]["p50"]["base"] == 51.0
    assert any("summary.json ttfc_ms p50 51 ms differs from its interval log" in note
               for note in document["notes"])  # fmt: skip


def test_default_metrics_leave_out_one_a_run_never_recorded(runs: dict[str, Path]) -> None:
    document = compare_runs([runs["fast"]], [runs["no_gaps"]])
    assert list(document["metrics"]) == ["ttfc_ms", "stream_ms", "error_rate"]
    assert any(note.startswith("inter_chunk_ms: not compared (no steady-state samples in ")
               for note in document["notes"])  # fmt: skip


def test_metrics_can_be_chosen_and_a_missing_or_unknown_one_is_refused(
    runs: dict[str, Path],
) -> None:
    document = compare_runs([runs["fast"]], [runs["slow"]], metrics=["stream_ms"])
    assert list(document["metrics"]) == ["stream_ms"]
    with pytest.raises(UsageError, match=r"inter_chunk_ms: no samples in the steady state of "):
        compare_runs([runs["fast"]], [runs["no_gaps"]], metrics=["inter_chunk_ms"])
    with pytest.raises(UsageError, match=r"unknown metric 'ttfc' \(known: connect_ms"):
        compare_runs([runs["fast"]], [runs["slow"]], metrics=["ttfc"])
    with pytest.raises(UsageError, match=r"unknown stat 'p42'"):
        compare_runs([runs["fast"]], [runs["slow"]], stats=["p42"])


def test_a_path_that_is_not_a_run_directory_is_refused(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"nowhere: not a run directory \(no run\.json\)"):
        compare_runs([tmp_path / "nowhere"], [runs["fast"]])
