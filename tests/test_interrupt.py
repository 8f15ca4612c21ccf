"""Ctrl-C during a run loses nothing: Locust stops, the run directory is complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _interactive_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored; a terminal's foreground job has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_run_and_still_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "-u", "4", "-t", "60s", "--out", str(out),
         "--target-args", "--profile fixed", "--", "--think-time", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_interactive_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    rows = out / "streams.csv"
    while not rows.exists() or rows.stat().st_size < 500:
        assert time.monotonic() < deadline and run.poll() is None, "the run did not get going"
        time.sleep(0.1)
    interrupted = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole group
    stdout, stderr = run.communicate(timeout=30)
    assert time.monotonic() - interrupted < 15, "stopped promptly, not at -t"
    assert run.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["duration_s"] < 30
    counts = summary["counts"]
    assert counts["streams_completed"] > 0
    assert counts["streams_failed"] == 0, "the target outlived the users"
    assert json.loads((out / "run.json").read_text())["ended_utc"] is not None
    assert "ttfc_ms" in stdout
