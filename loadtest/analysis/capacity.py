"""How much load does one backend carry within its SLO? The step-load (capacity) analysis.

A run of the ``capacity`` scenario records in ``run.json`` (``load.steps``) when each step was
asked for, when its load was really reached and when it ended. For each step, over the whole
windows between reach and end, this module gives:

- throughput (streams completed per second) and, in the open model, the achieved arrival rate;
- percentiles with 95 % intervals from the block bootstrap over time buckets of the step
  (:mod:`loadtest.analysis.buckets`, the method ``loadtest compare`` uses);
- SLO attainment: the share of the step's streams (by send time) meeting every per-stream
  objective of the SLO file; failed streams count against it, streams cancelled at the end do
  not; and goodput, those streams per second;
- the SLO file's checks judged on the step alone (windowed checks judge the run, not a step).

The knee is the highest step of the unbroken run of passing steps from the first; the sentence
names it and the first failing step. Method and assumptions: ``docs/analysis.md``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.analysis.buckets import (
    bootstrap_percentiles_ms,
    bucket_span,
    percentile_interval,
    read_bucket_histograms,
)
from loadtest.analysis.slo import evaluate
from loadtest.analysis.slo_spec import Check, SloSpec
from loadtest.metrics.aggregate import totals_summary
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.interval_log import COUNTS_FILE, HLOG_FILE, counts_lines, hlog_lines
from loadtest.metrics.stream_rows import STREAMS_FILE, read_stream_rows
from loadtest.metrics.window import MetricWindow
from loadtest.timespan import duration_seconds
from loadtest.utc import utc_seconds

#: Latency metrics every step reports, besides those the SLO file checks.
STEP_METRICS: tuple[str, ...] = ("ttfc_ms", "stream_ms")
STEP_STATS: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))
#: Per-stream columns of ``streams.csv`` an objective on the metric of the same name reads.
PER_STREAM_METRICS: frozenset[str] = frozenset(
    {"ttfs_ms", "ttfc_ms", "stream_ms", "connect_ms", "schedule_lag_ms"}
)
RESAMPLES = 1000
SEED = 20_261_201
#: A step held for less than this share of ``--step-time`` is flagged ``cut_short``.
CUT_SHORT_SHARE = 0.9


def run_capacity(
    run_dir: Path, run: Mapping[str, Any], spec: SloSpec | None
) -> dict[str, Any] | None:
    """The capacity analysis of a step-load run; ``None`` for any other run.

    Args:
        run_dir: the run directory.
        run: its ``run.json``.
        spec: the SLO file it is judged by, if any.
    """
    load = run.get("load") or {}
    steps = [step for step in load.get("steps") or [] if step.get("reached_s") is not None]
    if not steps:
        return None
    window_s = float(load.get("window_s") or 1.0)
    stopped = load.get("stopped_s")
    hold_s = _hold_s(run)
    spans = [_span(step, stopped, window_s) for step in steps]
    totals = _step_totals(run_dir, spans)
    objectives = per_stream_objectives(spec)
    rows = _rows(run_dir)
    checks = _step_checks(spec)
    results = []
    for step, (from_s, to_s), window in zip(steps, spans, totals, strict=True):
        step_span = (from_s, to_s, window_s)
        results.append(
            _step_result(run_dir, step, step_span, window, rows, objectives, checks, hold_s)
        )
    knee, failing = find_knee(results)
    open_model = steps[0].get("rate") is not None
    return {
        "model": "open" if open_model else "closed",
        "step_time_s": hold_s,
        "objectives": [f"{o.metric} {o.op} {o.threshold:g}" for o in objectives],
        "checks": [c.text for c in checks.checks] if checks is not None else [],
        "steps": results,
        "knee": _load_of(knee),
        "first_failing": _load_of(failing),
        "sentence": capacity_sentence(results, knee, failing, checks),
    }


def capacity_headline(capacity: Mapping[str, Any]) -> dict[str, Any]:
    """What ``summary.json`` keeps of the analysis (``report.json`` has it whole): the knee,
    the first failing step, the sentence, and each step's load and verdict."""
    kept = ("index", "users", "rate", "throughput_streams_per_s", "slo_verdict")
    return {
        "knee": capacity.get("knee"),
        "first_failing": capacity.get("first_failing"),
        "sentence": capacity.get("sentence"),
        "steps": [{key: step.get(key) for key in kept} for step in capacity.get("steps") or []],
    }


# -- spans, totals, rows ---------------------------------------------------------------------


def _hold_s(run: Mapping[str, Any]) -> float | None:
    """``--step-time`` as the shape read it (:func:`~loadtest.timespan.duration_seconds`)."""
    return duration_seconds(str((run.get("options") or {}).get("step_time") or "")) or None


def _span(step: Mapping[str, Any], stopped_s: Any, window_s: float) -> tuple[float, float]:
    """The whole windows from the step's reach to its end (its end: the next step's request,
    or the end of the load)."""
    reached = float(step["reached_s"])
    ended = step.get("ended_s")
    end = float(ended if ended is not None else stopped_s if stopped_s is not None else reached)
    from_s = math.ceil(reached / window_s - 1e-9) * window_s
    to_s = math.floor(end / window_s + 1e-9) * window_s
    return from_s, max(from_s, to_s)


def _step_totals(run_dir: Path, spans: Sequence[tuple[float, float]]) -> list[MetricWindow]:
    """Each step's histograms and counts, merged over its windows, in one pass per file."""
    totals = [MetricWindow(a, b) for a, b in spans]
    starts = [a for a, _ in spans]

    def step_of(start: float) -> int | None:
        index = bisect.bisect_right(starts, start + 1e-6) - 1
        if index >= 0 and spans[index][0] <= round(start, 6) < spans[index][1]:
            return index
        return None

    damaged = [0]
    with (Path(run_dir) / HLOG_FILE).open(encoding="utf-8") as hlog:
        for metric, start, _length, blob in hlog_lines(hlog, damaged):
            index = step_of(start)
            if index is None:
                continue
            histogram = totals[index].histograms.get(metric)
            if histogram is None:
                histogram = totals[index].histograms[metric] = LatencyHistogram()
            try:
                histogram.add_blob(blob.encode("ascii"))
            except ValueError:
                damaged[0] += 1
    counts_path = Path(run_dir) / COUNTS_FILE
    if counts_path.exists():
        with counts_path.open(encoding="utf-8") as lines:
            for _entry, window in counts_lines(lines, damaged, wanted=frozenset()):
                index = step_of(window.start_s)
                if index is not None:
                    totals[index].merge(window)
    return totals


def _rows(run_dir: Path) -> Any:
    """The stream rows with ``sent_s`` (epoch seconds), or ``None`` without a streams file."""
    if not (Path(run_dir) / STREAMS_FILE).exists():
        return None
    rows = read_stream_rows(run_dir)
    sent = rows["sent_utc"]
    rows = rows.assign(sent_s=(sent.astype("int64") / 1e9).where(sent.notna()))
    return rows


# -- objectives and checks ---------------------------------------------------------------------


class Objective:
    """One per-stream objective read off a latency check: ``ttfc_ms.p95 < 800`` → every
    stream's ``ttfc_ms < 800``."""

    def __init__(self, check: Check) -> None:
        self.metric = check.metric
        self.op = check.op
        self.threshold = float(check.threshold)
        self.check = check

    def met(self, values: Any) -> Any:
        """Element-wise: which values meet it (a missing value does not)."""
        return values.lt(self.threshold) if self.op == "<" else values.le(self.threshold)


def per_stream_objectives(spec: SloSpec | None) -> list[Objective]:
    """The SLO file's upper bounds on a per-stream latency (percentiles, max, mean), once
    per metric (the strictest threshold)."""
    if spec is None:
        return []
    strictest: dict[str, Objective] = {}
    for check in spec.checks:
        if check.kind != "latency" or check.metric not in PER_STREAM_METRICS:
            continue
        if check.op not in ("<", "<=") or check.stat in ("count", "min"):
            continue
        objective = Objective(check)
        found = strictest.get(check.metric)
        if found is None or objective.threshold < found.threshold:
            strictest[check.metric] = objective
    return list(strictest.values())


def _step_checks(spec: SloSpec | None) -> SloSpec | None:
    """The checks a single step can be judged by: all but the windowed ones."""
    if spec is None:
        return None
    checks = tuple(check for check in spec.checks if check.over_s is None)
    return replace(spec, checks=checks, abort_on_fail=False) if checks else None


# -- one step ------------------------------------------------------------------------------


def _step_result(
    run_dir: Path,
    step: Mapping[str, Any],
    span: tuple[float, float, float],
    window: MetricWindow,
    rows: Any,
    objectives: Sequence[Objective],
    checks: SloSpec | None,
    hold_s: float | None,
) -> dict[str, Any]:
    """One step's figures over ``span`` = (from, to, window length), epoch seconds."""
    from_s, to_s, _window_s = span
    held = to_s - from_s
    shaped = totals_summary(window)
    counts = shaped["counts"]
    completed, failed = int(counts["streams_completed"]), int(counts["streams_failed"])
    result: dict[str, Any] = {
        "index": int(step["index"]),
        "users": step.get("users"),
        "rate": step.get("rate"),
        "requested_utc": utc_seconds(float(step["requested_s"])),
        "reached_utc": utc_seconds(float(step["reached_s"])),
        "from_utc": utc_seconds(from_s),
        "to_utc": utc_seconds(to_s),
        "held_s": held,
        "ramp_s": round(float(step["reached_s"]) - float(step["requested_s"]), 3),
        "cut_short": bool(hold_s and held < CUT_SHORT_SHARE * hold_s),
        "streams": int(counts["streams_started"]),
        "streams_completed": completed,
        "streams_failed": failed,
        "throughput_streams_per_s": round(completed / held, 3) if held > 0 else None,
        "arrival_rate_per_s": round(counts["streams_started"] / held, 3) if held > 0 else None,
        "error_rate": round(failed / (completed + failed), 6) if completed + failed else None,
    }
    metrics = dict.fromkeys(STEP_METRICS)
    if checks is not None:
        metrics |= dict.fromkeys(c.metric for c in checks.checks if c.kind == "latency")
    result["metrics"] = _step_metrics(run_dir, list(metrics), span, shaped, step)
    result |= _attainment(rows, from_s, to_s, objectives)
    if checks is not None:
        judged = evaluate(checks, {
            "metrics": shaped["metrics"],
            "counts": counts,
            "steady_state": {"from_s": from_s, "to_s": to_s, "counts": counts},
            "duration_s": held,
        })  # fmt: skip
        result["checks"] = judged
        verdicts = {check["verdict"] for check in judged}
        result["slo_verdict"] = (
            "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts
            else "pass"
        )  # fmt: skip
        result["slo_passed"] = result["slo_verdict"] == "pass"
    else:
        result["checks"], result["slo_verdict"], result["slo_passed"] = [], None, None
    return result


def _step_metrics(
    run_dir: Path,
    metrics: Sequence[str],
    span: tuple[float, float, float],
    shaped: Mapping[str, Any],
    step: Mapping[str, Any],
) -> dict[str, Any]:
    """Per metric: count, p50/p95/p99 of the step, and each percentile's bootstrap interval
    (buckets of whole windows of the run's length)."""
    from_s, to_s, window_s = span
    found: dict[str, Any] = {}
    if to_s <= from_s:
        return found
    bucket_s = bucket_span(to_s - from_s, window_s)
    buckets, _damaged = read_bucket_histograms(
        run_dir, metrics, from_s=from_s, to_s=to_s, bucket_s=bucket_s
    )
    rng = np.random.default_rng(SEED + int(step["index"]))
    percentiles = [p for _, p in STEP_STATS]
    for metric in metrics:
        stats = (shaped["metrics"] or {}).get(metric) or {}
        if not stats.get("count"):
            continue
        entry: dict[str, Any] = {"count": int(stats["count"])}
        entry |= {name: stats[name] for name, _ in STEP_STATS}
        histograms = buckets.get(metric)
        if histograms is not None and histograms.buckets >= 2:
            highest_us, matrix = histograms.dense()
            draws = bootstrap_percentiles_ms(
                highest_us, matrix, percentiles, resamples=RESAMPLES, rng=rng
            )
            for column, (name, _) in enumerate(STEP_STATS):
                interval = percentile_interval(draws[:, column])
                entry[f"{name}_ci"] = [round(v, 3) for v in interval] if interval else None
        found[metric] = entry
    return found


def _attainment(
    rows: Any, from_s: float, to_s: float, objectives: Sequence[Objective]
) -> dict[str, Any]:
    """SLO attainment and goodput of the streams sent in the step's windows."""
    held_s = to_s - from_s
    empty = {"slo_attainment": None, "goodput_streams_per_s": None, "attainment_streams": 0}
    if rows is None:
        return empty
    sent = rows["sent_s"]
    mine = rows[(sent >= from_s) & (sent < to_s) & rows["outcome"].isin(["completed", "failed"])]
    judged = len(mine)
    if judged == 0:
        return empty
    good = mine["outcome"].eq("completed")
    for objective in objectives:
        good &= objective.met(mine[objective.metric]).fillna(False).astype(bool)
    meeting = int(good.sum())
    return {
        "slo_attainment": round(meeting / judged, 6),
        "goodput_streams_per_s": round(meeting / held_s, 3) if held_s > 0 else None,
        "attainment_streams": judged,
    }


# -- the knee ------------------------------------------------------------------------------


def find_knee(
    steps: Sequence[Mapping[str, Any]],
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """``(knee, first failing step)``: the knee is the last step of the unbroken run of
    passing steps from the first (a later step that passes again does not move it: the curve
    has been crossed); an inconclusive step ends the run too. ``(None, None)`` without checks.
    """
    if not steps or steps[0].get("slo_verdict") is None:
        return None, None
    knee = None
    for step in steps:
        if step.get("slo_verdict") != "pass":
            return knee, step
        knee = step
    return knee, None


def _load_of(step: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {"index": step["index"], "users": step.get("users"), "rate": step.get("rate")}


def load_phrase(step: Mapping[str, Any]) -> str:
    """``40 concurrent users`` or ``8 arrivals/s``."""
    if step.get("rate") is not None:
        return f"{float(step['rate']):g} arrivals/s"
    users = int(step.get("users") or 0)
    return f"{users} concurrent user{'s' if users != 1 else ''}"


def _load_value(step: Mapping[str, Any]) -> str:
    if step.get("rate") is not None:
        return f"{float(step['rate']):g}/s"
    return str(step.get("users"))


def capacity_sentence(
    steps: Sequence[Mapping[str, Any]],
    knee: Mapping[str, Any] | None,
    failing: Mapping[str, Any] | None,
    checks: SloSpec | None,
) -> str:
    """One line: what the backend holds, within which checks, and where it fails."""
    peak = max(steps, key=lambda s: s.get("throughput_streams_per_s") or 0.0)
    peak_text = (f"throughput peaks at {load_phrase(peak)} "
                 f"({peak.get('throughput_streams_per_s') or 0:g} streams/s)")  # fmt: skip
    if checks is None:
        return f"{peak_text}; no SLO file, so no knee"
    within = ", ".join(c.text for c in checks.checks)
    if failing is None:
        return (f"holds every step up to {load_phrase(steps[-1])} within {within}; "
                "the knee lies beyond the steps tried")  # fmt: skip
    why = _failure_reason(failing)
    if knee is None:
        return f"fails from the first step, {load_phrase(failing)}{why}"
    return f"holds {load_phrase(knee)} within {within}; fails from {_load_value(failing)}{why}"


def _failure_reason(step: Mapping[str, Any]) -> str:
    for check in step.get("checks") or []:
        if check["verdict"] == "fail":
            value = check.get("value")
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            return f" ({check['check']}: {shown})"
    for check in step.get("checks") or []:
        if check["verdict"] == "inconclusive":
            return f" ({check['check']} inconclusive: {check.get('detail', 'no value')})"
    return ""


def capacity_rows(capacity: Mapping[str, Any]) -> list[dict[str, str]]:
    """One display row per step, for the Markdown, HTML and terminal tables."""

    def ms(metric: Mapping[str, Any] | None, stat: str) -> str:
        if not metric or metric.get(stat) is None:
            return "–"
        interval = metric.get(f"{stat}_ci")
        text = f"{metric[stat]:.1f}"
        return f"{text} ({interval[0]:.1f}–{interval[1]:.1f})" if interval else text

    def share(value: Any) -> str:
        return "–" if value is None else f"{100 * float(value):.1f} %"

    rows = []
    knee = (capacity.get("knee") or {}).get("index")
    for step in capacity.get("steps") or []:
        metrics = step.get("metrics") or {}
        verdict = step.get("slo_verdict") or "–"
        rows.append({
            "load": _load_value(step) + (" (knee)" if step["index"] == knee else ""),
            "held": f"{step['held_s']:g} s" + (" (cut short)" if step.get("cut_short") else ""),
            "streams": f"{step['streams']:,}",
            "throughput": f"{step.get('throughput_streams_per_s') or 0:g}/s",
            "ttfc p95": ms(metrics.get("ttfc_ms"), "p95"),
            "stream p95": ms(metrics.get("stream_ms"), "p95"),
            "errors": share(step.get("error_rate")),
            "attainment": share(step.get("slo_attainment")),
            "goodput": "–" if step.get("goodput_streams_per_s") is None
            else f"{step['goodput_streams_per_s']:g}/s",
            "SLO": verdict,
        })  # fmt: skip
    return rows
