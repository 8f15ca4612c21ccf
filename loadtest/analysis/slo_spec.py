"""Service-level objectives as data: the SLO file format, parsed once into an :class:`SloSpec`.

Judging a spec against a run's summary is :func:`loadtest.analysis.slo.evaluate`; what each
check means is defined here, with the format.

An SLO file is TOML (the form in ``../shared/CONTRACT.md``)::

    min_samples = 100          # a check on fewer samples is inconclusive (default 20)
    abort_on_fail = false      # true: stop the run at its first failed windowed check
    checks = [
      "ttfc_ms.p95 < 800",             # METRIC.STAT OP NUMBER, latencies in ms
      "error_rate < 0.01",             # RATE OP NUMBER
      "streams_completed > 0",         # COUNT OP NUMBER (any key of summary.json counts)
      "ttfc_ms.p99 < 1500 over 60s",   # windowed: every 60 s bucket of the steady state holds
    ]

STAT is one of ``p50 p90 p95 p99 p999 min mean max count``; OP one of ``< <= > >=``;
DURATION is Locust's syntax (``60s``, ``5m``, ``1h``, ``1h30m``) or a bare number of seconds.

Derived rates (the same text is in ``docs/metrics.md``, "Derived rates and SLO checks"):

- ``error_rate = streams_failed / (streams_completed + streams_failed)``: cancelled streams
  (in flight when the run stopped) are excluded, as GuideLLM excludes requests cancelled at
  the time limit. Samples: the denominator.
- ``handshake_success_rate = connections_opened / (connections_opened + connection_failures)``.
  Samples: the denominator.
- ``reconnect_success_rate = reconnects / reconnect_attempts``. Samples: ``reconnect_attempts``;
  with no attempt the check is inconclusive (never 1.0 by convention).
- ``goodput = streams_completed / steady-state seconds`` in streams/s, counting the streams
  completed in the steady state (``steady_state.counts``), where the seconds are
  ``steady_state.to_s - steady_state.from_s`` (else ``duration_s``; per window, the window's
  length). Samples: ``streams_completed``; ``min_samples`` does not apply, because the
  denominator is time, not a sample count, and a stalled target (nothing completed) must fail
  ``goodput >= X`` rather than be waved through as inconclusive.

Any zero denominator makes the check inconclusive. Counts (``streams_completed > 0``) and
``METRIC.count`` are exact tallies, not estimates: ``min_samples`` does not apply to them, a
count never recorded is 0, and ``streams_completed > 0`` fails on an empty run just as the
built-in gate does. Every other check on fewer than ``min_samples`` samples, or on a metric
never recorded, is inconclusive: never a silent pass (k6 #1526 passed thresholds on misnamed
metrics; here a misnamed one is a parse error and a missing one is inconclusive).

A windowed check (``over D``) reads a :class:`~loadtest.analysis.series.WindowSeries` whose
``span_s`` is D. Only buckets wholly inside the steady state count; a bucket with fewer than
``min_samples`` samples is skipped, not failed; no qualifying bucket makes the check
inconclusive, and any qualifying bucket that violates the objective fails it.

Pure and read-only: no Locust, no gevent, no I/O beyond :func:`load_slo` reading its file.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from loadtest.analysis.series import SERIES_STATS
from loadtest.errors import UsageError
from loadtest.metrics.catalog import COUNTS, METRICS

DEFAULT_MIN_SAMPLES = 20

#: Statistics a latency check may name, in the order the contract lists them.
STATS: tuple[str, ...] = SERIES_STATS

#: Derived rates a check may name without a stat.
RATES: tuple[str, ...] = (
    "error_rate",
    "handshake_success_rate",
    "reconnect_success_rate",
    "goodput",
)

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_TOP_LEVEL_KEYS = ("min_samples", "abort_on_fail", "checks")

# The left-hand side is everything up to the first blank or comparison character, so that a
# k6-style "p(95)" or a misspelt name reaches the name checks whole and is named in the error.
_CHECK_RE = re.compile(
    r"^\s*(?P<lhs>[^\s<>=!]+)\s*(?P<op>[<>=!]+)?\s*(?P<number>\S+)?\s*(?P<rest>.*?)\s*$"
)
_OVER_RE = re.compile(r"^over\s+(?P<duration>\S+)$")
_DURATION_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


@dataclass(frozen=True)
class Check:
    """One objective, parsed.

    Attributes:
        text: the check as written in the file (stripped).
        line: 1-based line of the file on which the check's string appears.
        metric: a latency metric (``ttfc_ms``), a derived rate (``error_rate``) or a count key.
        stat: the latency statistic (``p95``), ``None`` for rates and counts.
        op: one of ``< <= > >=``.
        threshold: the number the value is compared with (ms for latencies).
        over_s: the window length of a windowed check, ``None`` for a whole-run check.
    """

    text: str
    line: int
    metric: str
    stat: str | None
    op: str
    threshold: float
    over_s: float | None

    @property
    def kind(self) -> str:
        """``"latency"``, ``"rate"`` or ``"count"``."""
        if self.stat is not None:
            return "latency"
        return "rate" if self.metric in RATES else "count"

    @property
    def exact(self) -> bool:
        """Whether the value is an exact tally (counts, ``METRIC.count``, goodput).

        ``min_samples`` guards estimates; a tally needs no guard, and guarding it would turn
        ``protocol_violations <= 0`` on a clean run into an inconclusive verdict.
        """
        return self.kind == "count" or self.stat == "count" or self.metric == "goodput"

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the objective.

        Args:
            value: the measured value, in the check's unit.

        Returns:
            ``value OP threshold``.
        """
        return OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class SloSpec:
    """A parsed SLO file.

    Attributes:
        source: the file name (or ``"<slo>"``) errors and reports name.
        min_samples: a non-exact check on fewer samples is inconclusive.
        abort_on_fail: stop the run at its first failed windowed check.
        checks: the objectives, in file order.
    """

    source: str
    min_samples: int = DEFAULT_MIN_SAMPLES
    abort_on_fail: bool = False
    checks: tuple[Check, ...] = ()

    def window_spans(self) -> list[float]:
        """The distinct window lengths of the windowed checks, shortest first.

        Returns:
            One ``over_s`` per :class:`~loadtest.analysis.series.WindowSeries` the caller must
            build for :func:`~loadtest.analysis.slo.evaluate`.
        """
        return sorted({check.over_s for check in self.checks if check.over_s is not None})


# ---------------------------------------------------------------------------------------------
# Parsing


def load_slo(path: Path) -> SloSpec:
    """Read and parse an SLO file.

    Args:
        path: the TOML file.

    Returns:
        The parsed spec; errors name ``path``.

    Raises:
        UsageError: the file cannot be read, or :func:`parse_slo` rejects it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{path}: cannot read SLO file: {reason}") from None
    return parse_slo(text, source=str(path))


def parse_slo(text: str, source: str = "<slo>") -> SloSpec:
    """Parse the text of an SLO file.

    Args:
        text: TOML with ``min_samples``, ``abort_on_fail`` and ``checks`` at the top level.
        source: what errors call the file.

    Returns:
        The spec, every check parsed.

    Raises:
        UsageError: one line ``SOURCE:LINE: what is wrong``: bad TOML, an unknown top-level
            key, a value of the wrong type, or a check with an unknown metric, stat or
            operator, a bad number or a bad duration.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(_toml_error(source, text, exc)) from None

    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            hint = _did_you_mean(key, _TOP_LEVEL_KEYS)
            raise UsageError(
                f"{source}:{_key_line(text, key)}: unknown key {key!r}{hint}"
                f" (known: {', '.join(_TOP_LEVEL_KEYS)})"
            )

    min_samples = document.get("min_samples", DEFAULT_MIN_SAMPLES)
    # bool is an int in Python; "min_samples = true" is a mistake, not 1.
    if not isinstance(min_samples, int) or isinstance(min_samples, bool) or min_samples < 1:
        raise UsageError(
            f"{source}:{_key_line(text, 'min_samples')}: min_samples must be an integer >= 1,"
            f" not {_toml_repr(min_samples)}"
        )
    abort_on_fail = document.get("abort_on_fail", False)
    if not isinstance(abort_on_fail, bool):
        raise UsageError(
            f"{source}:{_key_line(text, 'abort_on_fail')}: abort_on_fail must be true or false,"
            f" not {_toml_repr(abort_on_fail)}"
        )
    raw_checks = document.get("checks", [])
    checks_line = _key_line(text, "checks")
    if not isinstance(raw_checks, list):
        raise UsageError(
            f"{source}:{checks_line}: checks must be a list of strings,"
            f" not {_toml_repr(raw_checks)}"
        )

    checks = []
    search_from = _key_offset(text, "checks")
    for raw in raw_checks:
        if not isinstance(raw, str):
            raise UsageError(
                f"{source}:{checks_line}: every check must be a string, not {_toml_repr(raw)}"
            )
        line, search_from = _string_line(text, raw, search_from, checks_line)
        checks.append(parse_check(raw, line=line, source=source))
    return SloSpec(
        source=source,
        min_samples=min_samples,
        abort_on_fail=abort_on_fail,
        checks=tuple(checks),
    )


def parse_check(text: str, line: int = 1, source: str = "<slo>") -> Check:
    """Parse one check string.

    Args:
        text: ``METRIC.STAT OP NUMBER``, ``RATE OP NUMBER`` or ``COUNT OP NUMBER``, each with
            an optional ``over DURATION``.
        line: the line the string is on, for errors and for :attr:`Check.line`.
        source: the file name, for errors.

    Returns:
        The parsed check.

    Raises:
        UsageError: one line naming the file, the line and what is wrong.
    """
    stripped = text.strip()

    def fail(what: str) -> UsageError:
        return UsageError(f"{source}:{line}: check {stripped!r}: {what}")

    if not stripped:
        raise fail("empty check (write METRIC.STAT OP NUMBER, e.g. 'ttfc_ms.p95 < 800')")
    match = _CHECK_RE.match(stripped)
    if match is None:
        raise fail("missing metric before the operator")
    metric, stat = _parse_name(match["lhs"], fail)

    op = match["op"]
    if op is None:
        raise fail("missing operator (use one of < <= > >=)")
    if op not in OPERATORS:
        raise fail(f"unknown operator {op!r} (use one of < <= > >=)")

    number = match["number"]
    if number is None:
        raise fail(f"missing number after {op!r}")
    threshold = _parse_number(number)
    if threshold is None:
        # "800ms" is the commonest slip: the unit is implied by the metric.
        with_unit = re.fullmatch(r"[-+.\d]+(?:ms|s)", number)
        unit = " (write it without a unit: latencies are in ms)" if with_unit else ""
        raise fail(f"bad number {number!r}{unit}")

    over_s = None
    rest = match["rest"]
    if rest:
        over = _OVER_RE.match(rest)
        if over is None:
            raise fail(f"unexpected {rest!r} after the number (only 'over DURATION' may follow)")
        over_s = _parse_duration(over["duration"])
        if over_s is None:
            raise fail(
                f"bad duration {over['duration']!r} (write e.g. 60s, 5m, 1h or a number of"
                " seconds > 0)"
            )
    return Check(
        text=stripped,
        line=line,
        metric=metric,
        stat=stat,
        op=op,
        threshold=threshold,
        over_s=over_s,
    )


def _parse_name(lhs: str, fail: Callable[[str], UsageError]) -> tuple[str, str | None]:
    """Split ``METRIC.STAT`` / ``RATE`` / ``COUNT`` and check each part exists."""
    metric, dot, stat = lhs.partition(".")
    if not dot:
        if metric in RATES or metric in COUNTS:
            return metric, None
        if metric in METRICS:
            raise fail(f"{metric!r} needs a stat, e.g. '{metric}.p95' (stats: {' '.join(STATS)})")
        raise fail(f"unknown metric {metric!r}{_did_you_mean(metric, METRICS + RATES + COUNTS)}")
    if metric in RATES or metric in COUNTS:
        raise fail(f"{metric!r} is a {'rate' if metric in RATES else 'count'} and takes no stat")
    if metric not in METRICS:
        raise fail(f"unknown metric {metric!r}{_did_you_mean(metric, METRICS)}")
    if stat not in STATS:
        # k6 writes p(95); strip the punctuation so the hint finds p95.
        hint = _did_you_mean(re.sub(r"[^a-z0-9]", "", stat.lower()), STATS) or _did_you_mean(
            stat, STATS
        )
        raise fail(f"unknown stat {stat!r}{hint} (stats: {' '.join(STATS)})")
    return metric, stat


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    # nan compares false with everything and inf is never a real objective: both are typos.
    return value if math.isfinite(value) else None


def _parse_duration(text: str) -> float | None:
    """Locust's time syntax (``90s``, ``10m``, ``2h``, ``1h30m``) or bare seconds; > 0."""
    seconds = _parse_number(text)
    if seconds is None:
        match = _DURATION_RE.match(text)
        if match is None or not any(match.groups()):
            return None
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = float(hours * 3600 + minutes * 60 + secs)
    return seconds if seconds > 0 else None


def _did_you_mean(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _toml_error(source: str, text: str, exc: tomllib.TOMLDecodeError) -> str:
    # tomllib (3.11) only says "... (at line L, column C)" in its message; move the line to
    # the front so every error of this module reads SOURCE:LINE: what.
    message = str(exc)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if where is None:
        # "Unclosed array (at end of document)": the end is the last line.
        return f"{source}:{text.count(chr(10)) + 1}: bad TOML: {message}"
    what = message[: where.start()]
    return f"{source}:{where[1]}: bad TOML: {what} (column {where[2]})"


def _toml_repr(value: object) -> str:
    """A value as the file wrote it (``true``, not Python's ``True``), for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _key_offset(text: str, key: str) -> int:
    """Where a top-level ``key =`` or ``[key]`` starts in the raw text, 0 when absent."""
    pattern = rf"^[ \t]*(?:\[\[?[ \t]*)?[\"']?{re.escape(key)}[\"']?[ \t]*(?:=|\]|\.)"
    match = re.search(pattern, text, flags=re.MULTILINE)
    return match.start() if match else 0


def _key_line(text: str, key: str) -> int:
    return text.count("\n", 0, _key_offset(text, key)) + 1


def _string_line(text: str, value: str, start: int, fallback: int) -> tuple[int, int]:
    """The line on which the string ``value`` next appears at or after ``start``.

    Searching on from the previous check's position gives two identical checks their own
    lines. A string written with escapes is not found verbatim; it gets the ``checks`` line.

    Returns:
        ``(line, offset to search on from)``.
    """
    if value:
        # The earliest quoted occurrence, whichever quote the file used for it.
        found = [
            (at, len(value) + 2)
            for quote in ('"', "'")
            if (at := text.find(f"{quote}{value}{quote}", start)) >= 0
        ]
        if not found and (at := text.find(value, start)) >= 0:
            found = [(at, len(value))]
        if found:
            at, length = min(found)
            return text.count("\n", 0, at) + 1, at + length
    return fallback, start
