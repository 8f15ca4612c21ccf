"""A hand-built ReportInput with known shape: what every renderer test reads.

A run of ``buckets`` one-second buckets: a 20 s ramp before the steady state, a stall in the
middle during which the generator was saturated and streams failed, heartbeats, and a summary
with a passing, a failing and an inconclusive check plus the built-in gate, interrupted by
SIGINT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loadtest.analysis.series import WindowSeries
from loadtest.report.model import ReportInput

START_S = 1_796_160_000.0
RAMP_S = 20
HOSTILE = "<script>alert(1)</script>"

#: Percentiles an HdrHistogram-style spectrum is drawn at: 0, 50, 75, 87.5 … up to 99.99.
SPECTRUM_PERCENTILES = tuple(100.0 * (1.0 - 0.5**k) for k in range(15))


def _percentiles(rng: np.random.Generator, base: np.ndarray) -> dict[str, list[float | None]]:
    noise = rng.lognormal(0.0, 0.05, base.shape)
    p50 = base * noise
    stats: dict[str, list[float | None]] = {
        "p50": p50.tolist(),
        "p90": (p50 * 1.3).tolist(),
        "p95": (p50 * 1.5).tolist(),
        "p99": (p50 * 2.0).tolist(),
        "p999": (p50 * 2.5).tolist(),
        "min": (p50 * 0.8).tolist(),
        "mean": (p50 * 1.05).tolist(),
        "max": (p50 * 3.0).tolist(),
        "count": [40] * len(base),
    }
    for name in stats:
        stats[name][5] = None  # a bucket with no sample: a gap, not a zero
    return stats


def series(buckets: int = 300, *, seed: int = 7) -> WindowSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(buckets)
    stall = (t >= buckets // 2) & (t < buckets // 2 + 10)
    ttfc = np.where(stall, 400.0, 50.0)
    failed_timeout = np.where(stall, 3, 0)
    failed_disconnect = (rng.random(buckets) < 0.02).astype(int)
    return WindowSeries(
        span_s=1.0,
        start_s=(START_S + t).tolist(),
        percentiles={
            "ttfc_ms": _percentiles(rng, ttfc),
            "stream_ms": _percentiles(rng, ttfc + 200.0),
            "inter_chunk_ms": _percentiles(rng, np.full(buckets, 10.0)),
            "loop_lag_ms": _percentiles(rng, np.where(stall, 60.0, 1.0)),
            "gc_pause_ms": _percentiles(rng, np.full(buckets, 0.1)),
        },
        counts={
            "streams_completed": np.where(stall, 5, 45).tolist(),
            "streams_started": [50] * buckets,
            "streams_failed": (failed_timeout + failed_disconnect).tolist(),
            "disconnects": failed_disconnect.tolist(),
            "connection_failures": [0] * buckets,
        },
        breakdowns={
            "streams_failed": {
                "timeout": failed_timeout.tolist(),
                "disconnect": failed_disconnect.tolist(),
            },
            "disconnects": {"1006": failed_disconnect.tolist()},
            "connection_failures": {"$503 a|b": [0] * buckets},
        },
        gauges={"cpu_share": np.where(stall, 0.95, 0.4).tolist(), "rss_mb": [80.0] * buckets},
        open_connections=np.minimum(t * 5, 100).tolist(),
        saturated=stall.tolist(),
    )


def spectra(*, seed: int = 7) -> dict[str, list[tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    result: dict[str, list[tuple[float, float]]] = {}
    for metric, median in (("ttfc_ms", 50.0), ("stream_ms", 250.0), ("inter_chunk_ms", 10.0)):
        sample = rng.lognormal(np.log(median), 0.3, 20_000)
        values = np.percentile(sample, SPECTRUM_PERCENTILES)
        result[metric] = list(zip(SPECTRUM_PERCENTILES, values.tolist(), strict=True))
    return result


def _metric(p50: float, count: int) -> dict[str, float | int]:
    return {
        "count": count,
        "min": p50 * 0.8,
        "mean": p50 * 1.05,
        "p50": p50,
        "p90": p50 * 1.3,
        "p95": p50 * 1.5,
        "p99": p50 * 2.0,
        "p999": p50 * 2.5,
        "max": p50 * 3.0,
    }


def summary() -> dict[str, Any]:
    return {
        "schema": "loadtest.summary/1",
        "duration_s": 300.0,
        "metrics": {
            "ttfc_ms": _metric(51.2, 13_000),
            "stream_ms": _metric(251.0, 13_000),
            "inter_chunk_ms": _metric(10.3, 250_000),
            "pong_rtt_ms": _metric(0.0, 0),
        },
        "metrics_all": {"ttfc_ms": _metric(52.0, 13_500)},
        "counts": {
            "streams_started": 15_000,
            "streams_completed": 13_000,
            "streams_failed": 36,
            "disconnects": 6,
            "connection_failures": 0,
        },
        "breakdowns": {
            "streams_failed": {"by_error_kind": {"timeout": 30, "disconnect": 6}},
            "disconnects": {"by_close_code": {"1006": 6}},
            "connection_failures": {"by_status": {}},
        },
        "generator": {
            "saturated": True,
            "saturated_windows": [START_S + 150 + i for i in range(10)],
            "thresholds": {"cpu_share": 0.9, "loop_lag_p99_ms": 50.0, "gc_pause_ms": 20.0},
        },
        "slo": {
            "passed": False,
            "verdict": "fail",
            "checks": [
                {
                    "check": "streams_completed > 0",
                    "verdict": "pass",
                    "value": 13_000,
                    "samples": 15_000,
                    "builtin": True,
                },
                {"check": "ttfc_ms.p95 < 800", "verdict": "pass", "value": 76.8, "samples": 13_000},
                {
                    "check": "stream_ms.p99 < 400",
                    "verdict": "fail",
                    "value": 502.0,
                    "samples": 13_000,
                },
                {
                    "check": "reconnect_ms.p99 < 2000",
                    "verdict": "inconclusive",
                    "value": None,
                    "samples": 3,
                },
            ],
        },
        "steady_state": {
            "from_utc": "2026-12-01T21:20:20Z",
            "to_utc": "2026-12-01T21:25:00Z",
            "excluded_s": float(RAMP_S),
            "from_s": START_S + RAMP_S,
            "to_s": START_S + 300,
        },
        "interrupted": True,
        "interrupted_by": "SIGINT",
        "incomplete": None,
        "stopped": None,
    }


def run(scenario: str = HOSTILE, target: str = "wss://chat.example/ws?x=<b>&y=1") -> dict[str, Any]:
    return {
        "schema": "loadtest.run/1",
        "scenario": scenario,
        "locustfile": "scenarios/chat.py",
        "target": target,
        "started_utc": "2026-12-01T21:20:00Z",
        "ended_utc": "2026-12-01T21:25:00Z",
        "workers": 2,
        "host": "vm",
        "options": {
            "num_users": 50,
            "spawn_rate": 5.0,
            "run_time": 300,
            "think_time": "0.1",
            "window": 1.0,
        },
        "versions": {"python": "3.11.7", "loadtest": "0.1.0", "locust": "2.47.0"},
    }


def report_input(buckets: int = 300, **run_fields: Any) -> ReportInput:
    return ReportInput(
        summary=summary(), run=run(**run_fields), series=series(buckets), spectra=spectra()
    )
