"""Benchmark: is the load generator's memory flat over a long steady run?

Runs the chat scenario against the embedded reference target for ``--minutes`` with
heartbeats every 5 s and 1 % of replies cut mid-stream (so reconnects happen all along), then
reads the generator's RSS per window from ``intervals.counts.jsonl``. Each minute's *minimum*
RSS removes the garbage collector's sawtooth; the slope of those minima (least squares, MB
per hour) after the warm-up minutes is the leak figure. Traffic only to 127.0.0.1, bounded in time.

    .venv/bin/python bench/soak_memory.py [--minutes 30] [--users 50]

Writes bench/results/soak_memory.json (with provenance: commit, versions, machine, date).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from provenance import provenance, write_result

TARGET = "--profile fixed --ttfc-ms 50 --chunk-gap-ms 10 --chunks 20 --fault drop=0.01"


def per_minute_minimum_rss(run_dir: Path) -> list[tuple[float, float]]:
    """``(minutes since start, the minute's lowest RSS in MB)``, one per whole minute."""
    samples = []
    for line in (run_dir / "intervals.counts.jsonl").read_text().splitlines():
        window = json.loads(line)
        rss = window.get("gauges", {}).get("rss_mb", {}).get("last")
        if rss is not None:
            samples.append((float(window["start_s"]), float(rss)))
    samples.sort()
    start = samples[0][0]
    minutes: dict[int, float] = {}
    for at, rss in samples:
        minute = int((at - start) // 60)
        minutes[minute] = min(rss, minutes.get(minute, rss))
    last_whole = int((samples[-1][0] - start) // 60)
    return [(float(m), rss) for m, rss in sorted(minutes.items()) if m < last_whole]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--warmup-minutes", type=int, default=2,
                        help="left out of the slope: connecting, caches, the first windows")
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak_memory.json"))
    args = parser.parse_args()
    # Before the run: the code measured, not whatever is checked out after it.
    origin = provenance(["msgspec", "hdrhistogram"])
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        subprocess.run(
            [sys.executable, "-m", "loadtest.cli", "run", "-u", str(args.users),
             "-r", str(args.users), "-t", f"{args.minutes}m", "--out", str(run_dir),
             "--target-args", TARGET, "--", "--think-time", "0.5-1.5",
             "--heartbeat-interval", "5", "--reconnect-base", "1.1"],
            check=True, capture_output=True, timeout=args.minutes * 60 + 300,
        )  # fmt: skip
        summary = json.loads((run_dir / "summary.json").read_text())
        minima = per_minute_minimum_rss(run_dir)
    steady = [(m, r) for m, r in minima if m >= args.warmup_minutes]
    minutes = np.array([m for m, _ in steady])
    rss = np.array([r for _, r in steady])
    slope_mb_per_min = float(np.polyfit(minutes, rss, 1)[0]) if len(minima) > 1 else 0.0
    counts = summary["counts"]
    record = {
        "benchmark": "soak_memory",
        "provenance": origin,
        "users": args.users,
        "minutes": args.minutes,
        "target": TARGET,
        "rss_min_mb": {
            "first_5_min_median": round(float(np.median(rss[:5])), 1),
            "last_5_min_median": round(float(np.median(rss[-5:])), 1),
            "min": round(float(rss.min()), 1),
            "max": round(float(rss.max()), 1),
        },
        "slope_mb_per_hour": round(slope_mb_per_min * 60.0, 2),
        "warmup_minutes": args.warmup_minutes,
        "per_minute_min_rss_mb": [round(r, 1) for _, r in minima],
        "streams_completed": counts["streams_completed"],
        "reconnects": counts["reconnects"],
        "pings_sent": counts["pings_sent"],
        "generator_saturated": summary["generator"]["saturated"],
    }
    write_result(args.out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "per_minute_min_rss_mb"}, indent=2))


if __name__ == "__main__":
    main()
