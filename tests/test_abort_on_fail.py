"""abort_on_fail: a run stops at its first lost windowed SLO check, and says which."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def test_a_lost_windowed_check_stops_the_run_and_exits_3(tmp_path: Path) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text('abort_on_fail = true\nmin_samples = 5\nchecks = ["ttfc_ms.p99 < 10 over 2s"]\n')
    out = tmp_path / "run"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "-u", "4", "-t", "60s", "--out", str(out),
         "--slo", str(slo), "--format", "json",
         "--target-args", "--profile fixed --ttfc-ms 50", "--", "--think-time", "0.05"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 30, "stopped at the first lost window, not at -t"
    assert "abort_on_fail" in done.stderr and "ttfc_ms.p99 < 10 over 2s" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"]["check"] == "ttfc_ms.p99 < 10 over 2s"
    assert summary["aborted"]["value"] >= 50
    [check] = [c for c in summary["slo"]["checks"] if not c["builtin"]]
    assert check["verdict"] == "fail", "the report fails the check the run stopped on"
    assert (out / "slo.toml").read_text() == slo.read_text(), "kept for later rebuilds"
