"""Coordinated omission: a 2 s server freeze, seen by the open model and hidden by the closed.

A closed-loop user waits out the freeze once and then measures its next message from when it
got round to sending it, so the freeze costs it one slow sample. Arrivals on a schedule keep
coming during the freeze, and measuring from their intended start keeps every one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.target.process import TargetProcess
from tests.targets import TARGET_ENV

FREEZE_S = 2.0


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    args = ["--profile", "fixed", "--ttfc-ms", "20", "--chunk-gap-ms", "5", "--chunks", "3"]
    with TargetProcess(args, env=TARGET_ENV) as running:
        yield running


def run_with_a_freeze(target: TargetProcess, out: Path, *load: str) -> dict:
    command = [sys.executable, "-m", "loadtest.cli", "run", "-t", "8s",
               "--host", target.base_url, "--out", str(out), *load]  # fmt: skip
    run = subprocess.Popen(
        command, env={**os.environ, **TARGET_ENV},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    rows = out / "streams.csv"
    while not rows.exists() or rows.stat().st_size < 500:  # streams are flowing
        assert time.monotonic() < deadline and run.poll() is None, "the run did not get going"
        time.sleep(0.1)
    time.sleep(1.0)
    target.freeze(FREEZE_S)
    _, errors = run.communicate(timeout=60)
    assert run.returncode == 0, errors[-2000:]
    return json.loads((out / "summary.json").read_text())


def test_open_model_shows_the_freeze_that_the_closed_model_hides(
    target: TargetProcess, tmp_path: Path
) -> None:
    closed = run_with_a_freeze(
        target, tmp_path / "closed", "chat", "-u", "2", "-r", "2",
        "--", "--think-time", "0", "--consultation-id", "co-closed",
    )  # fmt: skip
    opened = run_with_a_freeze(
        target, tmp_path / "open", "--arrival-rate", "40", "--", "--consultation-id", "co-open",
    )  # fmt: skip

    # Each closed user was mid-stream when the freeze came (think time 0), so it waited it out
    # once: before its first chunk (ttfc) or between chunks (stream_ms), either way one sample.
    assert closed["metrics"]["stream_ms"]["max"] >= 1000 * FREEZE_S * 0.9, "closed users hit it"
    assert closed["metrics"]["ttfc_ms"]["p99"] < 1500, "…but it hides in the closed model's p99"

    from_intended = opened["metrics_all"]["ttfc_from_intended_ms"]
    assert from_intended["count"] > 200
    assert from_intended["p99"] >= 1500, "the open model keeps the freeze"
    assert opened["counts"]["dropped_arrivals"] == 0
    assert opened["metrics_all"]["schedule_lag_ms"]["count"] == opened["counts"]["streams_started"]
    assert from_intended["count"] == opened["counts"]["streams_completed"]
