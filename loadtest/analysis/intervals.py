"""Interval arithmetic for comparisons: run-to-run spread, Welch, Wilson, Newcombe.

Pure functions over numbers; :mod:`loadtest.analysis.compare` decides with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from loadtest.analysis.buckets import CONFIDENCE

_Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Run-to-run spread of one side (AIPerf's aggregation of repeated runs).

    Returns:
        ``{"runs", "values", "mean", "sd", "cv", "ci"}``: ``sd`` the sample standard deviation
        (n − 1), ``cv`` = sd / mean, ``ci`` the t-interval of the mean; ``sd``, ``cv`` and
        ``ci`` are ``None`` for a single run (and ``cv`` for a zero mean).
    """
    n = len(values)
    mean = float(np.mean(values))
    result: dict[str, Any] = {"runs": n, "values": list(values), "mean": mean,
                              "sd": None, "cv": None, "ci": None}  # fmt: skip
    if n >= 2:
        sd = float(np.std(values, ddof=1))
        half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
        result |= {"sd": sd, "cv": sd / mean if mean else None, "ci": (mean - half, mean + half)}
    return result


def welch_interval(base: Sequence[float], candidate: Sequence[float]) -> tuple[float, float]:
    """Welch's t-interval of mean(candidate) − mean(base) (Welch–Satterthwaite df).

    A side of one run has no spread of its own: it is then assumed to spread as the other
    side does (that side's variance for both, its n − 1 degrees of freedom), which is wider
    than ignoring the spread and is all one run allows. Needs ≥ 2 values on some side.
    """
    n1, n2 = len(base), len(candidate)
    if max(n1, n2) < 2:
        raise ValueError("a run-level interval needs two runs on at least one side")
    delta = float(np.mean(candidate) - np.mean(base))
    if min(n1, n2) < 2:
        variance = float(np.var(base if n1 > 1 else candidate, ddof=1))
        v1, v2 = variance / n1, variance / n2
        df = float(max(n1, n2) - 1)
    else:
        v1, v2 = float(np.var(base, ddof=1)) / n1, float(np.var(candidate, ddof=1)) / n2
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1)) if v1 + v2 else 1.0
    if v1 + v2 == 0:
        return delta, delta
    half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(v1 + v2)
    return delta - half, delta + half


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """Wilson's score interval of a proportion (``trials`` > 0)."""
    p = successes / trials
    z2 = _Z * _Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _Z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference_interval(
    base: tuple[int, int], candidate: tuple[int, int]
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) of p_candidate − p_base.

    Args:
        base, candidate: ``(events, trials)`` each, trials > 0.

    Built from each side's Wilson interval, so it behaves at 0 events and small counts, where
    the normal (Wald) interval collapses to a point.
    """
    p1, p2 = base[0] / base[1], candidate[0] / candidate[1]
    l1, u1 = wilson_interval(*base)
    l2, u2 = wilson_interval(*candidate)
    delta = p2 - p1
    return (delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))  # fmt: skip


def wider(*intervals: tuple[float, float] | None) -> tuple[tuple[float, float] | None, int]:
    """The widest of the given intervals and its position (``None``, -1 when none is given)."""
    best: tuple[float, float] | None = None
    position = -1
    for index, interval in enumerate(intervals):
        if interval is not None and (best is None or interval[1] - interval[0] > best[1] - best[0]):
            best, position = interval, index
    return best, position
