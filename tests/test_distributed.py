"""Multi-machine mode, on one machine: Locust's own --master and --worker --master-host."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from loadtest import receive_stamps
from loadtest.target.process import TargetProcess
from tests.targets import TARGET_ENV

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "chat.py")]


def start_fleet(
    target: TargetProcess, out: Path, load: list[str]
) -> tuple[subprocess.Popen, list[subprocess.Popen]]:
    """A headless master on a free port (``load``: its -u/-r/-t and our options) and two
    workers connected to it."""
    port = free_port()
    env = {**os.environ, **TARGET_ENV}
    master = subprocess.Popen(
        [*LOCUST, "--master", "--headless", "--expect-workers", "2",
         "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "--host", target.base_url, "--loadtest-out", str(out), *load],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    workers = [
        subprocess.Popen(
            [*LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    return master, workers


def test_master_and_two_workers_write_one_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with TargetProcess(["--profile", "fixed", "--chunks", "5"], env=TARGET_ENV) as target:
        master, workers = start_fleet(
            target, out, ["-u", "6", "-r", "6", "-t", "4s", "--think-time", "0.1"]
        )
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
    # The steady state starts once both workers' users had connected.
    run = json.loads((out / "run.json").read_text())
    load = run["load"]
    assert load["ramp_connected_s"] >= load["spawning_complete_s"]
    assert summary["steady_state"]["from_s"] >= load["ramp_connected_s"]
    # The master opened no connection: the clock it records is the workers' own tally.
    clock = "kernel" if receive_stamps.SO_TIMESTAMPNS else "read"
    assert run["receive_clock_connections"] == {clock: 6}
    assert run["receive_clock"] == clock


def test_a_worker_that_quits_on_sigterm_ships_what_it_measured_first(tmp_path: Path) -> None:
    """A pod evicted mid-run gets SIGTERM: its last windows and rows (up to Locust's 3 s
    report interval of them) must reach the master before the worker says it quit."""
    out, truth = tmp_path / "run", tmp_path / "truth.jsonl"
    target_args = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "1",
                   "--chunks", "3", "--ground-truth", str(truth)]  # fmt: skip
    with TargetProcess(target_args, env=TARGET_ENV) as target:
        master, workers = start_fleet(
            target, out, ["-u", "4", "-r", "4", "-t", "8s", "--think-time", "0.05"]
        )
        try:
            deadline = time.monotonic() + 30
            while len(_workers_in(out / "streams.csv")) < 2:  # both have reported once
                assert time.monotonic() < deadline and master.poll() is None
                time.sleep(0.1)
            workers[1].send_signal(signal.SIGTERM)
            assert workers[1].wait(timeout=20) == 0
            _, errors = master.communicate(timeout=60)
        finally:
            for worker in workers:
                worker.wait(timeout=20)
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    answered = {r["client_message_id"] for r in records
                if r["event"] == "stream" and r["outcome"] == "completed"}  # fmt: skip
    with (out / "streams.csv").open() as handle:
        recorded = {row["message_id"] for row in csv.DictReader(handle)}
    # At most the quitting worker's two users' streams in flight at the signal go unrecorded;
    # without the last report it was every stream of its last 0-3 s (about 40 here).
    assert len(answered - recorded) <= 2, errors[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is None
    assert summary["counts"]["streams_completed"] > 0


def _workers_in(streams: Path) -> set[str]:
    if not streams.exists():
        return set()
    with streams.open() as handle:
        return {row["worker"] for row in csv.DictReader(handle)}
