"""Judging a run against its SLO file: every check of an :class:`SloSpec` against a summary.

The file format, its parsing and what each check means (derived rates, ``min_samples``,
windowed checks) are in :mod:`loadtest.analysis.slo_spec`. :class:`Check`, :class:`SloSpec`,
:func:`load_slo` and :func:`parse_slo` are re-exported here for code that imports them from
``loadtest.analysis.slo``.

Pure and read-only: no Locust, no gevent, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from loadtest.analysis.series import WindowSeries
from loadtest.analysis.slo_spec import Check, SloSpec, load_slo, parse_slo
from loadtest.utc import utc_seconds

# The spec's names that importers took from this module before slo_spec held them.
__all__ = ["Check", "SloSpec", "evaluate", "load_slo", "parse_slo"]

# A bucket boundary computed from floats may miss the steady state's edge by a rounding error.
_EDGE_EPSILON_S = 1e-6


def evaluate(
    spec: SloSpec,
    summary: Mapping[str, Any],
    windows: Mapping[float, WindowSeries] | None = None,
) -> list[dict[str, Any]]:
    """Judge every check of ``spec`` against a run.

    Args:
        spec: the parsed SLO file.
        summary: ``summary.json`` as built: ``metrics`` (steady state), ``counts``,
            ``steady_state`` (``from_s``, ``to_s``) and ``duration_s`` are read.
        windows: one :class:`WindowSeries` per span of :meth:`SloSpec.window_spans`, keyed by
            that span; may be omitted when no check is windowed.

    Returns:
        One dict per check, in file order, shaped like those of
        :func:`loadtest.analysis.gate.builtin_checks`: ``check``, ``verdict`` (``pass`` /
        ``fail`` / ``inconclusive``), ``value``, ``samples``, ``builtin`` (False); ``detail``
        says why a check is inconclusive. A windowed check also has ``windows`` (buckets
        judged), ``windows_failed``, ``windows_skipped`` (too thin) and, when it failed,
        ``worst_window_utc`` (start of the worst bucket); its ``value`` is the worst judged
        bucket's.

    Raises:
        ValueError: a windowed check has no series of its span in ``windows`` (a caller bug).
    """
    results = []
    for check in spec.checks:
        if check.over_s is None:
            value, samples, why = _whole_run_value(check, summary)
            results.append(_result(check, value, samples, why, spec.min_samples))
        else:
            series = _series_for(check.over_s, windows or {})
            results.append(_windowed_result(check, summary, series, spec.min_samples))
    return results


def _result(
    check: Check, value: float | None, samples: int, why: str | None, min_samples: int
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "check": check.text,
        "verdict": "inconclusive",
        "value": value,
        "samples": samples,
        "builtin": False,
    }
    if why is None and not check.exact and samples < min_samples:
        why = f"{samples} samples, fewer than min_samples {min_samples}"
    if why is not None or value is None:
        result["detail"] = why or "no value"
        return result
    result["verdict"] = "pass" if check.holds(value) else "fail"
    return result


def _whole_run_value(
    check: Check, summary: Mapping[str, Any]
) -> tuple[float | None, int, str | None]:
    """``(value, samples, reason it cannot be judged or None)`` over the steady state."""
    counts = summary.get("counts") or {}
    if check.kind == "latency":
        stats = (summary.get("metrics") or {}).get(check.metric) or {}
        samples = int(stats.get("count") or 0)
        if check.stat == "count":
            return samples, samples, None
        value = stats.get(check.stat)
        if not samples or value is None:
            return None, 0, f"{check.metric} was never recorded"
        return float(value), samples, None
    if check.kind == "count":
        value = int(counts.get(check.metric, 0))
        return value, value, None
    if check.metric == "goodput":  # per steady second: so only the steady state's completions
        counts = (summary.get("steady_state") or {}).get("counts") or counts
    return _rate(check.metric, lambda key: int(counts.get(key, 0)), _steady_seconds(summary))


def _rate(
    name: str, count: Callable[[str], int], seconds: float | None
) -> tuple[float | None, int, str | None]:
    """A derived rate from counts: ``(value, samples, reason it is undefined or None)``."""
    if name == "goodput":
        completed = count("streams_completed")
        if not seconds or seconds <= 0:
            return None, completed, "no steady-state duration to divide by"
        return completed / seconds, completed, None
    numerator, denominator_keys = {
        "error_rate": ("streams_failed", ("streams_completed", "streams_failed")),
        "handshake_success_rate": (
            "connections_opened",
            ("connections_opened", "connection_failures"),
        ),
        "reconnect_success_rate": ("reconnects", ("reconnect_attempts",)),
    }[name]
    denominator = sum(count(key) for key in denominator_keys)
    if denominator == 0:
        return None, 0, f"{' + '.join(denominator_keys)} is 0"
    return count(numerator) / denominator, denominator, None


def _steady_seconds(summary: Mapping[str, Any]) -> float | None:
    steady = summary.get("steady_state") or {}
    if steady.get("from_s") is not None and steady.get("to_s") is not None:
        return float(steady["to_s"]) - float(steady["from_s"])
    duration = summary.get("duration_s")
    return None if duration is None else float(duration)


def _series_for(span_s: float, windows: Mapping[float, WindowSeries]) -> WindowSeries:
    series = windows.get(span_s)
    if series is None:
        # Keys may have been computed separately (60 vs 60.0 hash alike; 0.1 + 0.2 does not).
        series = next((s for k, s in windows.items() if math.isclose(k, span_s)), None)
    if series is None:
        raise ValueError(
            f"no WindowSeries of span {span_s:g} s: build one per SloSpec.window_spans()"
        )
    if not math.isclose(series.span_s, span_s):
        raise ValueError(f"windows[{span_s:g}] has span_s {series.span_s:g}")
    return series


def _windowed_result(
    check: Check, summary: Mapping[str, Any], series: WindowSeries, min_samples: int
) -> dict[str, Any]:
    steady = summary.get("steady_state") or {}
    from_s = steady.get("from_s")
    to_s = steady.get("to_s")
    judged: list[tuple[float, float, int]] = []  # (bucket start, value, samples)
    skipped = 0
    for index, start in enumerate(series.start_s):
        if from_s is not None and start < float(from_s) - _EDGE_EPSILON_S:
            continue
        if to_s is not None and start + series.span_s > float(to_s) + _EDGE_EPSILON_S:
            continue
        value, samples, why = _bucket_value(check, series, index)
        if why is not None or value is None or (not check.exact and samples < min_samples):
            skipped += 1
            continue
        judged.append((start, value, samples))

    result: dict[str, Any] = {
        "check": check.text,
        "verdict": "inconclusive",
        "value": None,
        "samples": sum(samples for _, _, samples in judged),
        "builtin": False,
        "windows": len(judged),
        "windows_failed": 0,
        "windows_skipped": skipped,
    }
    if not judged:
        result["detail"] = (
            f"no {check.over_s:g} s window in the steady state with {min_samples} samples"
            if not check.exact
            else f"no {check.over_s:g} s window in the steady state"
        )
        return result
    # The worst bucket is the one furthest on the wrong side: highest for an upper bound.
    pick = max if check.op in ("<", "<=") else min
    worst_start, worst_value, _ = pick(judged, key=lambda bucket: bucket[1])
    failed = sum(1 for _, value, _ in judged if not check.holds(value))
    result["value"] = worst_value
    result["windows_failed"] = failed
    result["verdict"] = "fail" if failed else "pass"
    if failed:
        result["worst_window_utc"] = utc_seconds(worst_start)
    return result


def _bucket_value(
    check: Check, series: WindowSeries, index: int
) -> tuple[float | None, int, str | None]:
    """``(value, samples, reason it is undefined or None)`` of one bucket."""

    def count(key: str) -> int:
        values = series.counts.get(key)
        return int(values[index]) if values else 0

    if check.kind == "latency":
        stats = series.percentiles.get(check.metric) or {}
        counts = stats.get("count")
        samples = int(counts[index] or 0) if counts else 0
        if check.stat == "count":
            return samples, samples, None
        values = stats.get(check.stat or "")
        value = values[index] if values else None
        if not samples or value is None:
            return None, 0, "no sample"
        return float(value), samples, None
    if check.kind == "count":
        value = count(check.metric)
        return value, value, None
    return _rate(check.metric, count, series.span_s)
