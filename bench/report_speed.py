"""Benchmark: how long `loadtest report` takes on a soak's run directory, and its memory.

Writes a synthetic run of ``--hours`` of 1 s windows with the writers a real run uses (each
window: 20 streams with ttfc, ttfs, stream and 40 inter-chunk gaps each, connect and pong
samples, generator loop lag and GC pauses, counters and gauges), then times
``loadtest report RUN_DIR --format html,md,json,junit`` in a fresh process (best of
``--repeats``), with its peak RSS from the OS. Nothing is sent anywhere.

    .venv/bin/python bench/report_speed.py [--hours 8] [--repeats 3]

Writes bench/results/report_speed.json (with provenance: commit, versions, machine, repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance, repeats, write_result

START = 1_800_000_000.0


def write_soak(run_dir: Path, hours: float) -> int:
    from loadtest.metrics.interval_log import IntervalLogWriter
    from loadtest.metrics.window import MetricWindow

    rng = random.Random(1)
    seconds = int(hours * 3600)
    run_dir.mkdir(parents=True)
    with IntervalLogWriter(run_dir, start_time_s=START) as log:
        for second in range(seconds):
            window = MetricWindow(START + second, START + second + 1)
            for _ in range(20):
                window.record("ttfs_ms", rng.lognormvariate(0, 0.3))
                window.record("ttfc_ms", rng.lognormvariate(6.5, 0.4))
                window.record("stream_ms", rng.lognormvariate(8, 0.3))
                gaps = (rng.lognormvariate(3.5, 0.5) for _ in range(40))
                window.record_many("inter_chunk_ms", gaps)
            window.record("pong_rtt_ms", rng.lognormvariate(0, 0.5))
            if second % 10 == 0:
                window.record("connect_ms", rng.lognormvariate(1, 0.3))
            for _ in range(10):
                window.record("loop_lag_ms", rng.lognormvariate(-1, 0.5))
            window.record("gc_pause_ms", rng.lognormvariate(-1, 0.5))
            window.count("streams_started", 20)
            window.count("streams_completed", 20)
            window.count("connections_opened", 1 if second % 10 == 0 else 0)
            window.count("connections_closed", 1 if second % 10 == 5 else 0)
            window.gauge("cpu_share", rng.uniform(0.2, 0.5))
            window.gauge("rss_mb", 120 + rng.uniform(0, 5))
            log.write(window)
    (run_dir / "streams.csv").write_text("worker,user\n")
    (run_dir / "events.jsonl").write_text("")
    run = {"schema": "loadtest.run/1", "scenario": "soak", "target": "ws://127.0.0.1:1",
           "options": {"window": 1.0},
           "load": {"started_s": START, "stopped_s": START + seconds,
                    "spawning_complete_s": START + 30, "warmup_s": 0, "window_s": 1.0},
           "outcome": {}}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run))
    return seconds


def time_report(run_dir: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `loadtest report` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "report", str(run_dir),
         "--format", "html,md,json,junit", "--quiet"],
        check=True, timeout=900,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak_kb, before) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/report_speed.json"))
    args = parser.parse_args()
    origin = provenance(["hdrhistogram", "matplotlib", "pandas", "pyarrow"])
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(os.environ.get("REPORT_SPEED_DIR") or scratch) / "run"
        written = time.perf_counter()
        windows = write_soak(run_dir, args.hours)
        write_s = time.perf_counter() - written
        sizes = {p.name: p.stat().st_size for p in run_dir.iterdir()}
        runs = [time_report(run_dir) for _ in range(args.repeats)]
    seconds = sorted(r[0] for r in runs)
    record = {
        "benchmark": "report_speed",
        "provenance": origin,
        "hours": args.hours,
        "windows": windows,
        "file_bytes": sizes,
        "synthetic_write_s": round(write_s, 1),
        "report_s": repeats(seconds, 2),
        "report_peak_rss_mb": round(max(r[1] for r in runs), 1),
    }
    write_result(args.out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
