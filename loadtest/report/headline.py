"""What every report states first: the run's verdict, its checks, why it is marked, what ran.

Pure reads of ``summary.json`` and ``run.json`` shared by the HTML, Markdown and JUnit
renderers, so all of them word a verdict, a banner and a value the same way. Every key may be
absent: a summary from an older run lacks ``steady_state`` or ``metrics_all``, and a report of
it must still render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERDICTS: tuple[str, ...] = ("pass", "fail", "inconclusive")


@dataclass(frozen=True)
class Banner:
    """A reason the run's numbers need reading with care.

    Attributes:
        kind: ``interrupted``, ``incomplete``, ``stopped`` or ``saturated``.
        title: a word or two (``Interrupted``).
        text: one line saying what happened; plain text, unescaped.
    """

    kind: str
    title: str
    text: str


def overall_verdict(summary: Mapping[str, Any]) -> str:
    """``pass``, ``fail`` or ``inconclusive``: the SLO verdict, built-in gate included.

    A summary without a ``slo`` verdict is ``inconclusive``, never a silent pass.
    """
    slo = summary.get("slo") or {}
    verdict = slo.get("verdict")
    if verdict in VERDICTS:
        return str(verdict)
    if "passed" in slo:
        return "pass" if slo["passed"] else "fail"
    return "inconclusive"


def checks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The SLO checks in summary order (built-in gate included), each with ``check``,
    ``verdict``, ``value``, ``samples`` and maybe ``builtin``."""
    slo = summary.get("slo") or {}
    return list(slo.get("checks") or [])


def banners(summary: Mapping[str, Any]) -> list[Banner]:
    """Why the run is marked, most serious first: stopped, incomplete, interrupted, saturated."""
    found: list[Banner] = []
    stopped = summary.get("stopped")
    if stopped:
        detail = stopped.get("detail") if isinstance(stopped, Mapping) else None
        found.append(Banner("stopped", "Stopped", str(detail or "every user stopped on a refusal")))
    incomplete = summary.get("incomplete")
    if incomplete:
        details: Mapping[str, Any] = incomplete if isinstance(incomplete, Mapping) else {}
        lost = details.get("workers_lost") or []
        reason = details.get("reason") or ""
        workers = f" (workers lost: {', '.join(map(str, lost))})" if lost else ""
        found.append(
            Banner("incomplete", "Incomplete", f"{reason or 'a worker was lost'}{workers}")
        )
    if summary.get("interrupted"):
        by = summary.get("interrupted_by") or "a signal"
        found.append(
            Banner(
                "interrupted",
                "Interrupted",
                f"stopped early by {by}: the run is shorter than asked",
            )
        )
    generator = summary.get("generator") or {}
    if generator.get("saturated"):
        windows = generator.get("saturated_windows") or []
        found.append(
            Banner(
                "saturated",
                "Generator saturated",
                f"{len(windows)} window(s) had the load generator saturated: latencies there "
                "include its own queueing (add --workers)",
            )
        )
    return found


def format_value(value: Any) -> str:
    """A check's value as people read it: ``812.3``, ``0.0042``, ``180``, ``-`` when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def format_ms(value: Any, column: str) -> str:
    """A percentile-table cell: ``count`` as a thousands-grouped int, the rest in ms."""
    if value is None:
        return "-"
    if column == "count":
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def steady_state_text(summary: Mapping[str, Any]) -> str:
    """Which span the headline metrics cover, in one sentence."""
    steady = summary.get("steady_state")
    whole = "metrics_all" in summary
    if not steady:
        return "Whole run (this summary marks no steady state)."
    span = f"{steady.get('from_utc', '?')} → {steady.get('to_utc', '?')}"
    excluded = steady.get("excluded_s")
    left_out = (
        f"; {excluded:g} s outside it (ramp, warm-up, the last window) left out" if excluded else ""
    )
    also = "; the whole run is in summary.json metrics_all" if whole else ""
    return f"Steady state {span}{left_out}{also}."


def run_facts(run: Mapping[str, Any], summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` pairs of what ran, where and when; values are unescaped text."""
    options: Mapping[str, Any] = run.get("options") or {}
    facts: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            facts.append((label, str(value)))

    add("scenario", run.get("scenario") or options.get("loadtest_scenario"))
    add("locustfile", run.get("locustfile"))
    target = run.get("target")
    if target and run.get("target_embedded"):
        target = f"{target} (embedded reference target {run.get('target_args') or ''})".strip()
    add("target", target)
    add("start (UTC)", run.get("started_utc"))
    add("end (UTC)", run.get("ended_utc"))
    duration = summary.get("duration_s")
    add("duration", f"{duration:g} s" if isinstance(duration, int | float) else None)
    add("load", load_text(options))
    add("think time", options.get("think_time"))
    add(
        "window",
        f"{options['window']:g} s" if isinstance(options.get("window"), int | float) else None,
    )
    add("workers", run.get("workers"))
    add("host", run.get("host"))
    versions: Mapping[str, Any] = run.get("versions") or {}
    add("versions", ", ".join(f"{name} {version}" for name, version in versions.items()))
    return facts


def load_text(options: Mapping[str, Any]) -> str | None:
    """``5 users, spawn 5/s, 5 s`` (closed model) or ``2 arrivals/s, 60 s`` (open model)."""
    parts: list[str] = []
    rate = options.get("arrival_rate")
    if isinstance(rate, int | float) and rate > 0:
        parts.append(f"{rate:g} arrivals/s")
    elif options.get("num_users") is not None:
        parts.append(f"{options['num_users']} users")
        if options.get("spawn_rate") is not None:
            parts.append(f"spawn {options['spawn_rate']:g}/s")
    if options.get("run_time") is not None:
        run_time = options["run_time"]
        parts.append(f"{run_time:g} s" if isinstance(run_time, int | float) else str(run_time))
    return ", ".join(parts) or None


def nonzero_counts(summary: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The counts worth a reader's eye: those not zero, in summary order."""
    counts: Mapping[str, Any] = summary.get("counts") or {}
    return [(key, int(value)) for key, value in counts.items() if value]


def breakdown_lines(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``("streams_failed by_error_kind", "timeout: 2, disconnect: 1")`` per non-empty map."""
    lines: list[tuple[str, str]] = []
    breakdowns: Mapping[str, Mapping[str, Mapping[str, int]]] = summary.get("breakdowns") or {}
    for key, maps in breakdowns.items():
        for map_name, values in (maps or {}).items():
            if values:
                detail = ", ".join(f"{label}: {n:,}" for label, n in sorted(values.items()))
                lines.append((f"{key} {map_name}", detail))
    return lines


def table_metrics(summary: Mapping[str, Any], order: Sequence[str]) -> list[str]:
    """Metric keys with samples: ``order`` first, then any other recorded metric."""
    metrics: Mapping[str, Mapping[str, Any]] = summary.get("metrics") or {}
    chosen = [key for key in order if (metrics.get(key) or {}).get("count")]
    extra = [
        key for key, values in metrics.items() if key not in order and (values or {}).get("count")
    ]
    return chosen + extra
