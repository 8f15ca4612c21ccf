"""The SLO file as data: a TOML file parsed once, errors that point at the line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from loadtest.analysis import slo_spec
from loadtest.analysis.slo_spec import Check, SloSpec, load_slo, parse_slo
from loadtest.errors import UsageError

EXAMPLE = Path(__file__).parent / "slo" / "release.toml"
METRICS_DOC = Path(__file__).parents[2] / "docs" / "metrics.md"


def spec(*checks: str, min_samples: int = 20) -> SloSpec:
    lines = ",\n".join(f'  "{check}"' for check in checks)
    return parse_slo(f"min_samples = {min_samples}\nchecks = [\n{lines},\n]\n")


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
# Defined once


def rate_definitions(text: str) -> str:
    """The bullet list that follows "Derived rates:", with reST's double backticks made single."""
    block = text.split("Derived rates", 1)[1].split(":\n\n", 1)[1].split("\n\n", 1)[0]
    return "\n".join(line.strip() for line in block.replace("``", "`").splitlines())


def test_the_docs_define_the_rates_in_the_modules_words() -> None:
    section = METRICS_DOC.read_text().split("## Derived rates and SLO checks", 1)[1]
    assert rate_definitions(section) == rate_definitions(slo_spec.__doc__ or "")
    assert "`goodput = streams_completed / steady-state seconds`" in rate_definitions(section)
