"""Interrupts stop a run quickly, write its whole run directory, and never look like a pass."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _interactive_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored; a terminal's foreground job has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_run(out: Path, rows_bytes: int = 500) -> subprocess.Popen[str]:
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "-u", "4", "-t", "60s", "--out", str(out),
         "--target-args", "--profile fixed", "--", "--think-time", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_interactive_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    rows = out / "streams.csv"
    while not rows.exists() or rows.stat().st_size < rows_bytes:
        assert time.monotonic() < deadline and run.poll() is None, "the run did not get going"
        time.sleep(0.1)
    return run


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_an_interrupt_writes_every_file_marks_the_run_and_exits_with_the_signal(
    tmp_path: Path, signum: int, code: int, name: str
) -> None:
    out = tmp_path / "run"
    run = _start_run(out, rows_bytes=6000)  # a few steady seconds, so the table has numbers
    interrupted = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(run.pid, signum)  # what a terminal does on Ctrl-C: the whole group
    else:
        run.send_signal(signum)  # what CI and Kubernetes do: the tool's process
    stdout, stderr = run.communicate(timeout=30)
    assert time.monotonic() - interrupted < 10, "run directory and report within 10 s"
    assert run.returncode == code, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["interrupted_by"] == name
    assert summary["duration_s"] < 30
    counts = summary["counts"]
    assert counts["streams_completed"] > 0
    assert counts["streams_failed"] == 0, "the target outlived the users"
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["ended_utc"] is not None and run_json["interrupted"] is True
    assert "ttfc_ms" in stdout and "INTERRUPTED" in stdout
    assert not list(out.glob(".*.tmp")), "no half-written file is left behind"


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = _start_run(out)
    os.killpg(run.pid, signal.SIGINT)
    time.sleep(0.05)  # two presses, not one: signals arriving together are delivered once
    os.killpg(run.pid, signal.SIGINT)
    interrupted = time.monotonic()
    _, stderr = run.communicate(timeout=30)
    assert time.monotonic() - interrupted < 3
    assert run.returncode == 130, stderr
    assert "interrupted again" in stderr
