"""Run directories with known data, written by the same writers a run uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from loadtest.metrics.interval_log import IntervalLogWriter
from loadtest.metrics.window import MetricWindow

START = 1_800_000_000.0


def write_run_dir(
    run_dir: Path,
    seconds: int,
    fill: Callable[[MetricWindow, int], None],
    *,
    spawned_after_s: float = 0.0,
    connected_after_s: float | None = None,
    warmup_s: float = 0.0,
    outcome: dict | None = None,
    notes: Callable[[int], list[str]] = lambda second: [],
) -> Path:
    """``seconds`` one-second windows filled by ``fill(window, second)``, and a run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with IntervalLogWriter(run_dir, start_time_s=START) as log:
        for second in range(seconds):
            window = MetricWindow(START + second, START + second + 1)
            fill(window, second)
            log.write(window, notes=notes(second))
    (run_dir / "streams.csv").write_text("worker,user\n")
    (run_dir / "events.jsonl").write_text("")
    run = {
        "schema": "loadtest.run/1",
        "scenario": "synthetic",
        "target": "ws://127.0.0.1:1",
        "started_utc": "2027-01-15T08:00:00Z",
        "ended_utc": "2027-01-15T08:00:00Z",
        "options": {"window": 1.0},
        "load": {"started_s": START, "stopped_s": START + seconds,
                 "spawning_complete_s": START + spawned_after_s, "warmup_s": warmup_s,
                 "window_s": 1.0,
                 **({"ramp_connected_s": START + connected_after_s}
                    if connected_after_s is not None else {})},
        "outcome": outcome or {"interrupted_by": None, "stopped": None, "incomplete": None},
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir
