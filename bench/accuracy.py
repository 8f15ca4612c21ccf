"""Benchmark: how far our client-side timings sit from the server's own, stream by stream.

Runs the chat scenario against the embedded reference target with a fixed profile and
``--ground-truth``, joins each stream row to the server's record by message id, and reports
the measurement overhead: client ``ttfc_ms`` minus the server's received → first-chunk-sent
time (what the client adds: two loopback hops, the kernel, the gevent hub, our parse), over
the whole run and after the first 2 s (the ramp, when every user connects at once). Traffic
only to 127.0.0.1, bounded in time.

    .venv/bin/python bench/accuracy.py [--users 50] [--seconds 20]

Writes bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from loadtest.metrics.histogram import LatencyHistogram
from loadtest.metrics.stream_rows import read_stream_rows

#: Every user starts within the first second (-r = -u); its connects crowd the generator.
RAMP_S = 2.0


def measure(users: int, seconds: int, scratch: Path) -> dict:
    out, truth = scratch / f"run-{users}", scratch / f"truth-{users}.jsonl"
    target = f"--profile fixed --ttfc-ms 50 --chunk-gap-ms 10 --chunks 20 --ground-truth {truth}"
    subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "-u", str(users), "-r", str(users),
         "-t", f"{seconds}s", "--out", str(out), "--target-args", target,
         "--", "--think-time", "0.5-1.5"],
        check=True, capture_output=True, timeout=seconds + 120,
    )  # fmt: skip
    rows = read_stream_rows(out)
    rows = rows[rows["outcome"] == "completed"]
    server = pd.read_json(truth, lines=True)
    server = server[server["event"] == "stream"]
    server["server_ttfc_ms"] = (server["first_chunk_sent"] - server["received"]) * 1000.0
    joined = rows.merge(server, left_on="message_id", right_on="client_message_id")
    joined["overhead_ms"] = joined["ttfc_ms"] - joined["server_ttfc_ms"]
    ramp_end = joined["sent_utc"].min() + pd.Timedelta(seconds=RAMP_S)
    overhead, steady = LatencyHistogram(), LatencyHistogram()
    for sent, value in zip(joined["sent_utc"], joined["overhead_ms"], strict=True):
        overhead.record_ms(float(value))
        if sent >= ramp_end:
            steady.record_ms(float(value))
    summary = json.loads((out / "summary.json").read_text())
    return {
        "users": users,
        "streams_joined": len(joined),
        "streams_completed": summary["counts"]["streams_completed"],
        "client_ttfc_ms": summary["metrics"]["ttfc_ms"],
        "client_inter_chunk_ms": summary["metrics"]["inter_chunk_ms"],
        "overhead_ms": overhead.summary_ms(),
        "overhead_after_ramp_ms": steady.summary_ms(),
        "generator": {k: summary["generator"][k] for k in ("saturated", "cpu_share_max")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/accuracy.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = [measure(users, args.seconds, Path(scratch)) for users in args.users]
    record = {
        "benchmark": "accuracy",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "target": "fixed: ttfc 50 ms, 20 chunks 10 ms apart",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
