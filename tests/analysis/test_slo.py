"""SLOs as data: a TOML file parsed once, errors that point at the line, verdicts never silent."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from loadtest.analysis import slo
from loadtest.analysis.gate import builtin_checks, exit_code, slo_section
from loadtest.analysis.series import WindowSeries
from loadtest.analysis.slo import Check, SloSpec, evaluate, load_slo, parse_slo
from loadtest.errors import UsageError

EXAMPLE = Path(__file__).parent / "slo" / "release.toml"
METRICS_DOC = Path(__file__).parents[2] / "docs" / "metrics.md"

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
# Parsing: every form


def test_the_example_file_parses_each_check_with_its_line() -> None:
    release = load_slo(EXAMPLE)
    assert release.source == str(EXAMPLE)
    assert release.min_samples == 50
    assert release.abort_on_fail is False
    assert [(check.text, check.line) for check in release.checks] == [
        ("ttfc_ms.p95 < 800", 5),
        ("stream_ms.p99 < 6000", 6),
        ("error_rate < 0.01", 7),
        ("reconnect_success_rate >= 0.99", 8),
        ("streams_completed > 0", 9),
        ("ttfc_ms.p99 < 1500 over 60s", 10),
    ]
    assert release.window_spans() == [60.0]


def test_a_latency_check_names_metric_stat_operator_and_threshold_in_ms() -> None:
    (check,) = parse_slo('checks = ["ttfc_ms.p95 < 800"]').checks
    assert check == Check(text="ttfc_ms.p95 < 800", line=1, metric="ttfc_ms", stat="p95",
                          op="<", threshold=800.0, over_s=None)
    assert check.kind == "latency"


def test_rates_and_counts_take_no_stat() -> None:
    parsed = spec("error_rate < 0.01", "goodput >= 2.5", "streams_completed > 0").checks
    assert [(c.metric, c.stat, c.op, c.threshold, c.kind) for c in parsed] == [
        ("error_rate", None, "<", 0.01, "rate"),
        ("goodput", None, ">=", 2.5, "rate"),
        ("streams_completed", None, ">", 0.0, "count"),
    ]


def test_every_stat_and_operator_is_accepted_with_or_without_blanks() -> None:
    stats = ["p50", "p90", "p95", "p99", "p999", "min", "mean", "max", "count"]
    parsed = spec(*(f"stream_ms.{stat} {op} 1" for stat in stats for op in ("<", "<=", ">", ">=")))
    assert len(parsed.checks) == 36
    assert spec("ttfc_ms.p95<=800").checks[0].op == "<="


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("60s", 60.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), ("90", 90.0),
     ("2.5", 2.5)],
)
def test_over_makes_a_check_windowed_in_locust_time_syntax(duration: str, seconds: float) -> None:
    (check,) = spec(f"ttfc_ms.p99 < 1500 over {duration}").checks
    assert check.over_s == seconds


def test_window_spans_lists_each_distinct_span_once_shortest_first() -> None:
    parsed = spec("ttfc_ms.p99 < 1 over 5m", "error_rate < 1 over 60s", "stream_ms.p99 < 1 over 1m",
                  "ttfc_ms.p95 < 1")
    assert parsed.window_spans() == [60.0, 300.0]


def test_defaults_are_twenty_samples_no_abort_and_no_checks() -> None:
    assert parse_slo("") == SloSpec(source="<slo>", min_samples=20, abort_on_fail=False, checks=())
    assert parse_slo("abort_on_fail = true").abort_on_fail is True


def test_a_parsed_spec_is_frozen() -> None:
    parsed = spec("ttfc_ms.p95 < 800")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.checks[0].threshold = 1.0  # type: ignore[misc]


def test_two_identical_checks_each_get_their_own_line() -> None:
    text = "checks = [\n  'error_rate < 0.01',\n  \"error_rate < 0.01\",\n]\n"
    assert [check.line for check in parse_slo(text).checks] == [2, 3]


# ---------------------------------------------------------------------------------------------
# Parsing: errors name the file and the line

FIVE_LINES = """\
# release objectives
min_samples = 10
checks = [
  "ttfc_ms.p95 < 800",
  "{bad}",
  "stream_ms.p99 < 6000",
]
"""


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("stream_msec.p95 < 800", "unknown metric 'stream_msec' (did you mean 'stream_ms'?)"),
        ("error_rat < 0.01", "unknown metric 'error_rat' (did you mean 'error_rate'?)"),
        ("ttfc_ms.p(95) < 800", "unknown stat 'p(95)' (did you mean 'p95'?)"),
        ("ttfc_ms.p97 < 800", "unknown stat 'p97'"),
        ("ttfc_ms < 800", "'ttfc_ms' needs a stat, e.g. 'ttfc_ms.p95'"),
        ("error_rate.p95 < 0.01", "'error_rate' is a rate and takes no stat"),
        ("ttfc_ms.p95 == 800", "unknown operator '==' (use one of < <= > >=)"),
        ("ttfc_ms.p95 =< 800", "unknown operator '=<'"),
        ("ttfc_ms.p95 800", "missing operator"),
        ("ttfc_ms.p95 < fast", "bad number 'fast'"),
        ("ttfc_ms.p95 < 800ms", "bad number '800ms' (write it without a unit"),
        ("ttfc_ms.p95 < nan", "bad number 'nan'"),
        ("ttfc_ms.p95 <", "missing number after '<'"),
        ("ttfc_ms.p99 < 1500 over 60x", "bad duration '60x'"),
        ("ttfc_ms.p99 < 1500 over 0s", "bad duration '0s'"),
        ("ttfc_ms.p99 < 1500 every 60s", "unexpected 'every 60s' after the number"),
    ],
)
def test_a_bad_check_is_one_line_naming_file_line_and_fault(
    tmp_path: Path, bad: str, what: str
) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(FIVE_LINES.format(bad=bad))
    with pytest.raises(UsageError) as raised:
        load_slo(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:5: check '{bad}': ")
    assert what in message
    assert "\n" not in message
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min_samples = 10\nchecks = [\n  'ttfc_ms.p95 < 800'\n  'x < 1',\n]\n",
         "slo.toml:4: bad TOML: "),
        ("min_samples = 10\n\nchek = ['ttfc_ms.p95 < 800']\n",
         "slo.toml:3: unknown key 'chek' (did you mean 'checks'?)"),
        ("checks = []\n[slo]\nmin_samples = 3\n", "slo.toml:2: unknown key 'slo'"),
        ("checks = []\nmin_samples = 0\n", "slo.toml:2: min_samples must be an integer >= 1, not 0"
         ),
        ("checks = []\nmin_samples = true\n", "slo.toml:2: min_samples must be an integer >= 1,"
         " not true"),
        ("checks = []\nmin_samples = '20'\n", "slo.toml:2: min_samples must be an integer"),
        ("checks = []\n\nabort_on_fail = 'yes'\n",
         "slo.toml:3: abort_on_fail must be true or false, not \"yes\""),
        ("\nchecks = 'ttfc_ms.p95 < 800'\n", "slo.toml:2: checks must be a list of strings"),
        ("\n\nchecks = [800]\n", "slo.toml:3: every check must be a string, not 800"),
        ("checks = [\n  'ttfc_ms.p95 < 800',\n", "slo.toml:3: bad TOML: "),
    ],
)
def test_a_bad_file_is_one_line_naming_its_line(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_slo(text, source="slo.toml")
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_bad_toml_keeps_tomllibs_column() -> None:
    with pytest.raises(UsageError, match=r"^slo\.toml:2: bad TOML: .*\(column \d+\)$"):
        parse_slo("checks = []\nmin_samples = = 3\n", source="slo.toml")


def test_a_missing_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(UsageError, match=f"^{missing}: cannot read SLO file: "):
        load_slo(missing)


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
# Defined once


def rate_definitions(text: str) -> str:
    """The bullet list that follows "Derived rates:", with reST's double backticks made single."""
    block = text.split("Derived rates", 1)[1].split(":\n\n", 1)[1].split("\n\n", 1)[0]
    return "\n".join(line.strip() for line in block.replace("``", "`").splitlines())


def test_the_docs_define_the_rates_in_the_modules_words() -> None:
    section = METRICS_DOC.read_text().split("## Derived rates and SLO checks", 1)[1]
    assert rate_definitions(section) == rate_definitions(slo.__doc__ or "")
    assert "`goodput = streams_completed / steady-state seconds`" in rate_definitions(section)
