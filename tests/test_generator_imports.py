"""The load generator never imports pandas, matplotlib or scipy, not even to finish its run:
the summary and reports are made in a process of their own, after the load stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_whole_run_leaves_the_locust_process_free_of_analysis_libraries(tmp_path: Path) -> None:
    scenario = Path(__file__).parent / "scenarios" / "probe_imports.py"
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", str(scenario), "-u", "2", "-t", "3s",
         "--out", str(out), "--target-args", "--profile fixed", "--", "--think-time", "0.1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[loadtest] probe: heavy imports []" in done.stderr
    assert (out / "summary.json").exists() and (out / "report.html").exists()
