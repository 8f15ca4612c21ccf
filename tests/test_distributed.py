"""Multi-machine mode, on one machine: Locust's own --master and --worker --master-host."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from loadtest.target.process import TargetProcess
from tests.targets import TARGET_ENV

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_master_and_two_workers_write_one_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    port = free_port()
    env = {**os.environ, **TARGET_ENV}
    locust = [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "chat.py")]
    with TargetProcess(["--profile", "fixed", "--chunks", "5"], env=TARGET_ENV) as target:
        master = subprocess.Popen(
            [*locust, "--master", "--headless", "--expect-workers", "2",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
             "-u", "6", "-r", "6", "-t", "4s", "--host", target.base_url,
             "--loadtest-out", str(out), "--think-time", "0.1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        workers = [
            subprocess.Popen(
                [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            _, errors = master.communicate(timeout=60)
        finally:
            for worker in workers:
                worker.wait(timeout=20)
    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["connections_opened"] == 6, errors[-2000:]
    assert counts["streams_completed"] > 0 and counts["streams_failed"] == 0
    with (out / "streams.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == counts["streams_started"]
    assert len({row["worker"] for row in rows}) == 2
    assert summary["metrics_all"]["ttfc_ms"]["count"] == counts["streams_completed"]
