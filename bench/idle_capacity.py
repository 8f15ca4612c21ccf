"""Benchmark: idle heartbeating connections one Locust process holds, and memory per connection.

Runs the idle scenario twice against the embedded reference target (127.0.0.1 only, bounded
in time) with a small and a large user count, and takes memory per connection as the slope
of the generator's peak RSS between the two, so the interpreter's baseline cancels out.

    .venv/bin/python bench/idle_capacity.py [--small 500] [--large 5000] [--seconds 40]

Writes bench/results/idle_capacity.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run_idle(users: int, seconds: int, out: Path) -> dict:
    command = [
        sys.executable, "-m", "loadtest.cli", "run", "idle",
        "-u", str(users), "-r", "1000", "-t", f"{seconds}s", "--out", str(out),
        "--target-args", "--profile fixed",
        "--", "--heartbeat-interval", "5", "--consultation-id", "idle-bench",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=seconds + 120)
    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    return {
        "users": users,
        "peak_open": summary["connections"]["peak_open"],
        "rss_max_mb": summary["generator"]["rss_max_mb"],
        "pings_sent": counts["pings_sent"],
        "pongs_received": counts["pongs_received"],
        "pongs_missed": counts["pongs_missed"],
        "connection_failures": counts["connection_failures"],
        "pong_rtt_ms": summary["metrics"]["pong_rtt_ms"],
        "connect_ms": summary["metrics"]["connect_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench/results/idle_capacity.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        small = run_idle(args.small, args.seconds, Path(scratch) / "small")
        large = run_idle(args.large, args.seconds, Path(scratch) / "large")
    per_connection_kib = (
        (large["rss_max_mb"] - small["rss_max_mb"])
        * 1024
        / (large["peak_open"] - small["peak_open"])
    )
    record = {
        "benchmark": "idle_capacity",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "runs": [small, large],
        "memory_per_connection_kib": round(per_connection_kib, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
