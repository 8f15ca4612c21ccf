"""SLO verdicts: every check judged against a summary, never silent, beside the built-in gate."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.analysis import slo, slo_spec
from loadtest.analysis.gate import builtin_checks, exit_code, slo_section
from loadtest.analysis.series import WindowSeries
from loadtest.analysis.slo import evaluate
from loadtest.analysis.slo_spec import SloSpec, parse_slo

# A steady state of four whole minutes: [T, T + 240). T is a multiple of 60, as bucket starts are.
T = 1_700_000_040.0


def spec(*checks: str, min_samples: int = 20) -> SloSpec:
    lines = ",\n".join(f'  "{check}"' for check in checks)
    return parse_slo(f"min_samples = {min_samples}\nchecks = [\n{lines},\n]\n")


def run_summary(
    metrics: dict[str, dict[str, Any]] | None = None, **counts: int
) -> dict[str, Any]:
    """A summary.json as the summary builder writes it: steady state [T, T + 240)."""
    return {
        "duration_s": 300.0,
        "metrics": metrics or {},
        "counts": counts,
        "steady_state": {"from_s": T, "to_s": T + 240.0},
    }


def ttfc(count: int, **stats: float) -> dict[str, dict[str, Any]]:
    return {"ttfc_ms": {"count": count, **stats}}


def minutes(
    p99: list[float | None], count: list[int], first: float = T, **counts: list[int]
) -> dict[float, WindowSeries]:
    """One 60 s series whose buckets start at ``first``, ``first + 60`` …"""
    series = WindowSeries(
        span_s=60.0,
        start_s=[first + 60.0 * index for index in range(len(p99))],
        percentiles={"ttfc_ms": {"p99": p99, "count": count}},
        counts=counts,
    )
    return {60.0: series}


def only(results: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(results) == 1
    return results[0]


# ---------------------------------------------------------------------------------------------
# Evaluation over the whole steady state


def test_a_latency_check_passes_or_fails_on_the_steady_state_value() -> None:
    summary = run_summary(ttfc(1840, p95=512.3))
    assert only(evaluate(spec("ttfc_ms.p95 < 800"), summary, {})) == {
        "check": "ttfc_ms.p95 < 800", "verdict": "pass", "value": 512.3, "samples": 1840,
        "builtin": False,
    }
    assert only(evaluate(spec("ttfc_ms.p95 < 500"), summary, {}))["verdict"] == "fail"
    # The operator is strict or not as written: 512.3 <= 512.3 holds, 512.3 < 512.3 does not.
    assert only(evaluate(spec("ttfc_ms.p95 <= 512.3"), summary, {}))["verdict"] == "pass"
    assert only(evaluate(spec("ttfc_ms.p95 < 512.3"), summary, {}))["verdict"] == "fail"


def test_fewer_samples_than_min_samples_is_inconclusive_even_when_the_value_would_pass() -> None:
    thin = run_summary(ttfc(99, p95=1.0))
    result = only(evaluate(spec("ttfc_ms.p95 < 800", min_samples=100), thin, {}))
    assert result["verdict"] == "inconclusive"
    assert (result["value"], result["samples"]) == (1.0, 99)
    assert "fewer than min_samples 100" in result["detail"]


def test_a_metric_never_recorded_is_inconclusive_with_zero_samples() -> None:
    for metrics in ({}, {"ttfc_ms": {"count": 0, "p95": None}}):
        result = only(evaluate(spec("ttfc_ms.p95 < 800"), run_summary(metrics), {}))
        assert (result["verdict"], result["value"], result["samples"]) == ("inconclusive", None, 0)


def test_counts_are_exact_tallies_that_min_samples_does_not_guard() -> None:
    clean = run_summary(streams_completed=5, protocol_violations=0)
    checks = spec("protocol_violations <= 0", "streams_completed > 0", "ttfc_ms.count >= 0")
    assert [r["verdict"] for r in evaluate(checks, clean, {})] == ["pass", "pass", "pass"]
    # Like the built-in gate, a run that completed nothing fails rather than being inconclusive.
    empty = only(evaluate(spec("streams_completed > 0"), run_summary(), {}))
    assert (empty["verdict"], empty["value"], empty["samples"]) == ("fail", 0, 0)


def test_error_rate_is_failed_over_ended_streams_and_leaves_cancelled_ones_out() -> None:
    summary = run_summary(streams_completed=97, streams_failed=3, streams_cancelled=50)
    result = only(evaluate(spec("error_rate < 0.01"), summary, {}))
    # 3 / (97 + 3) = 0.03; the 50 cancelled at the time limit are neither good nor bad.
    assert (result["verdict"], result["value"], result["samples"]) == ("fail", 0.03, 100)


def test_handshake_success_rate_is_opened_over_attempted_handshakes() -> None:
    summary = run_summary(connections_opened=190, connection_failures=10)
    result = only(evaluate(spec("handshake_success_rate >= 0.95"), summary, {}))
    # 190 / (190 + 10) = 0.95
    assert (result["verdict"], result["value"], result["samples"]) == ("pass", 0.95, 200)


def test_reconnect_success_rate_is_reconnects_over_attempts_and_undefined_without_one() -> None:
    summary = run_summary(reconnects=49, reconnect_attempts=50)
    result = only(evaluate(spec("reconnect_success_rate >= 0.99"), summary, {}))
    # 49 / 50 = 0.98
    assert (result["verdict"], result["value"], result["samples"]) == ("fail", 0.98, 50)
    none = only(evaluate(spec("reconnect_success_rate >= 0.99"), run_summary(reconnects=0), {}))
    assert (none["verdict"], none["value"], none["samples"]) == ("inconclusive", None, 0)
    assert none["detail"] == "reconnect_attempts is 0"


def test_a_zero_denominator_is_inconclusive_not_a_perfect_rate() -> None:
    for check in ("error_rate < 0.01", "handshake_success_rate > 0.9"):
        result = only(evaluate(spec(check), run_summary(streams_cancelled=7), {}))
        assert (result["verdict"], result["value"], result["samples"]) == ("inconclusive", None, 0)


def test_goodput_is_completed_streams_per_steady_state_second() -> None:
    summary = run_summary(streams_completed=600)
    result = only(evaluate(spec("goodput >= 2"), summary, {}))
    # 600 streams / (T + 240 − T) s = 2.5 streams/s
    assert (result["verdict"], result["value"], result["samples"]) == ("pass", 2.5, 600)
    # Without a steady state the whole run's duration divides: 600 / 300 s = 2.0.
    whole = {"duration_s": 300.0, "counts": {"streams_completed": 600}}
    assert only(evaluate(spec("goodput > 2"), whole, {}))["value"] == 2.0
    assert only(evaluate(spec("goodput > 2"), {"counts": {}}, {}))["verdict"] == "inconclusive"


def test_a_stalled_target_fails_goodput_rather_than_being_waved_through() -> None:
    result = only(evaluate(spec("goodput >= 1"), run_summary(streams_started=40), {}))
    assert (result["verdict"], result["value"]) == ("fail", 0.0)


# ---------------------------------------------------------------------------------------------
# Windowed checks: every bucket of the steady state must hold


def test_a_windowed_check_passes_when_every_bucket_holds() -> None:
    series = minutes(p99=[900.0, 1400.0, 1100.0, 950.0], count=[50, 50, 50, 50])
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert result == {
        "check": "ttfc_ms.p99 < 1500 over 60s", "verdict": "pass", "value": 1400.0,
        "samples": 200, "builtin": False, "windows": 4, "windows_failed": 0,
        "windows_skipped": 0,
    }


def test_one_bad_bucket_fails_a_windowed_check_and_is_named() -> None:
    series = minutes(p99=[900.0, 1700.0, 2100.0, 950.0], count=[50, 50, 50, 50])
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert result["verdict"] == "fail"
    assert (result["value"], result["windows"], result["windows_failed"]) == (2100.0, 4, 2)
    assert result["worst_window_utc"] == "2023-11-14T22:16:00Z"  # T + 120 s


def test_a_lower_bound_names_its_lowest_bucket_as_the_worst() -> None:
    series = minutes(p99=[None] * 4, count=[0] * 4,
                     streams_completed=[120, 30, 90, 120])
    result = only(evaluate(spec("goodput >= 1 over 60s"), run_summary(), series))
    # 30 streams in the second minute: 0.5 streams/s
    assert (result["verdict"], result["value"]) == ("fail", 0.5)
    assert result["worst_window_utc"] == "2023-11-14T22:15:00Z"


def test_a_thin_bucket_is_skipped_not_failed() -> None:
    series = minutes(p99=[900.0, 9000.0, 1000.0, 1100.0], count=[50, 3, 50, 50])
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert (result["verdict"], result["windows"], result["windows_skipped"]) == ("pass", 3, 1)
    assert result["samples"] == 150


def test_a_windowed_check_with_no_qualifying_bucket_is_inconclusive() -> None:
    series = minutes(p99=[9000.0, None, 9000.0, 9000.0], count=[5, 0, 19, 1])
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert (result["verdict"], result["value"], result["windows"]) == ("inconclusive", None, 0)
    assert result["windows_skipped"] == 4


def test_buckets_outside_the_steady_state_are_not_judged() -> None:
    # Buckets from T − 60 (the ramp) to T + 240 (after the steady state ends at T + 240).
    series = minutes(p99=[9000.0, 900.0, 900.0, 900.0, 900.0, 9000.0], count=[50] * 6,
                     first=T - 60.0)
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert (result["verdict"], result["windows"], result["windows_skipped"]) == ("pass", 4, 0)
    # Without from_s / to_s every bucket counts, the ramp's too.
    everything = {"metrics": {}, "counts": {}, "steady_state": {"from_utc": "…"}}
    assert only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), everything, series))["verdict"] == (
        "fail"
    )


def test_a_bucket_straddling_the_steady_state_edge_is_left_out() -> None:
    series = minutes(p99=[9000.0, 900.0], count=[50, 50], first=T - 30.0)
    result = only(evaluate(spec("ttfc_ms.p99 < 1500 over 60s"), run_summary(), series))
    assert (result["verdict"], result["windows"]) == ("pass", 1)


def test_a_windowed_rate_uses_each_buckets_counts() -> None:
    series = minutes(p99=[None] * 4, count=[0] * 4,
                     streams_completed=[99, 95, 100, 10],
                     streams_failed=[1, 5, 0, 0])
    result = only(evaluate(spec("error_rate < 0.02 over 60s"), run_summary(), series))
    # Minute 2: 5 / (95 + 5) = 0.05 fails; minute 4 has 10 ended streams (< 20) and is skipped.
    assert (result["verdict"], result["value"]) == ("fail", 0.05)
    assert (result["windows"], result["windows_failed"], result["windows_skipped"]) == (3, 1, 1)


def test_each_span_reads_its_own_series_and_a_missing_one_is_a_caller_error() -> None:
    parsed = spec("ttfc_ms.p99 < 1500 over 1m")
    assert parsed.window_spans() == [60.0]
    with pytest.raises(ValueError, match="no WindowSeries of span 60 s"):
        evaluate(parsed, run_summary(), {})


# ---------------------------------------------------------------------------------------------
# With the built-in gate: one decision, one exit code


def decide(parsed: SloSpec, summary: dict[str, Any], windows: dict[float, WindowSeries]) -> dict:
    summary["slo"] = slo_section(builtin_checks(summary) + evaluate(parsed, summary, windows))
    return summary


def test_every_check_passing_with_the_builtin_gate_exits_0() -> None:
    summary = run_summary(ttfc(1840, p95=512.3), streams_started=100, streams_completed=100)
    decided = decide(spec("ttfc_ms.p95 < 800", "error_rate < 0.01"), summary, {})
    assert decided["slo"]["verdict"] == "pass"
    assert [check["builtin"] for check in decided["slo"]["checks"]] == [True, False, False]
    assert exit_code(decided) == 0


def test_one_failed_check_fails_the_run_with_3_even_beside_an_inconclusive_one() -> None:
    summary = run_summary(ttfc(1840, p95=912.0), streams_started=100, streams_completed=100)
    decided = decide(spec("ttfc_ms.p95 < 800", "reconnect_success_rate >= 0.99"), summary, {})
    assert [check["verdict"] for check in decided["slo"]["checks"]] == [
        "pass", "fail", "inconclusive"]
    assert (decided["slo"]["verdict"], decided["slo"]["passed"]) == ("fail", False)
    assert exit_code(decided) == 3


def test_an_inconclusive_check_and_none_failed_is_inconclusive_and_exits_3() -> None:
    summary = run_summary(ttfc(5, p95=100.0), streams_started=5, streams_completed=5)
    decided = decide(spec("ttfc_ms.p95 < 800"), summary, {})
    assert (decided["slo"]["verdict"], decided["slo"]["passed"]) == ("inconclusive", False)
    assert exit_code(decided) == 3


def test_a_failed_windowed_check_fails_the_run() -> None:
    summary = run_summary(streams_started=200, streams_completed=200)
    series = minutes(p99=[900.0, 1700.0, 900.0, 900.0], count=[50] * 4)
    decided = decide(spec("ttfc_ms.p99 < 1500 over 60s"), summary, series)
    assert decided["slo"]["verdict"] == "fail"
    assert exit_code(decided) == 3


# ---------------------------------------------------------------------------------------------
# Re-exported: the spec's names still import from loadtest.analysis.slo


def test_the_spec_names_imported_from_slo_are_slo_specs() -> None:
    for name in ("Check", "SloSpec", "load_slo", "parse_slo"):
        assert getattr(slo, name) is getattr(slo_spec, name)
