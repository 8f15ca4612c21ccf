"""`loadtest run capacity` against the reference target's capacity profile finds the knee.

The profile serves 4 replies at a time, each 100 ms to its first chunk and 200 ms in all; a
fifth waits for a slot. So closed-loop users without think time stay within 200 ms up to 4
users and not at 8 (each then waits ~200 ms: ttfc ~300 ms), and open-model arrivals up to
4 / 0.2 s = 20 per second: at 15 per second (evenly spaced) no reply waits, at 40 the queue
grows without bound.
The margins on both sides of the threshold are ~100 ms, so a busy machine does not move the knee.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ["--profile", "capacity", "--set", "slots=4", "--set", "ttfc_ms=100",
           "--set", "chunk_gap_ms=5", "--set", "chunks=20"]  # fmt: skip
SLO = 'min_samples = 20\nchecks = ["ttfc_ms.p95 < 200", "error_rate < 0.01"]\n'


def run_capacity(tmp_path: Path, *step_args: str) -> tuple[subprocess.CompletedProcess, Path]:
    slo = tmp_path / "slo.toml"
    slo.write_text(SLO)
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "capacity", "-t", "40s",
         "--out", str(out), "--format", "json,md", "--slo", str(slo),
         "--target-args", " ".join(PROFILE), "--", "--step-time", "4", "--think-time", "0",
         *step_args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done, out


def test_closed_model_steps_find_the_knee_at_the_profiles_slots(tmp_path: Path) -> None:
    done, out = run_capacity(tmp_path, "--steps", "2,4,8")
    assert done.returncode == 3, done.stderr[-3000:]  # the whole run fails ttfc p95 < 200
    capacity = json.loads((out / "report.json").read_text())["capacity"]
    assert capacity["knee"] == {"index": 1, "users": 4, "rate": None}
    assert capacity["first_failing"]["users"] == 8
    steps = json.loads((out / "run.json").read_text())["load"]["steps"]
    assert [s["users"] for s in steps] == [2, 4, 8]
    assert all(s["requested_s"] <= s["reached_s"] < s["ended_s"] for s in steps)
    assert all(s["ended_s"] - s["reached_s"] >= 3 for s in steps)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["capacity"]["sentence"] == capacity["sentence"]
    assert "CAPACITY     holds 4 concurrent users within ttfc_ms.p95 < 200" in done.stdout
    assert "holds 4 concurrent users" in (out / "report.md").read_text()


def test_open_model_rate_steps_find_the_knee_below_the_service_rate(tmp_path: Path) -> None:
    done, out = run_capacity(tmp_path, "--rate-steps", "10,15,40")
    assert done.returncode == 3, done.stderr[-3000:]
    capacity = json.loads((out / "report.json").read_text())["capacity"]
    assert capacity["model"] == "open"
    assert capacity["knee"] == {"index": 1, "users": None, "rate": 15.0}
    achieved = [s["arrival_rate_per_s"] for s in capacity["steps"]]
    for wanted, got in zip((10, 15, 40), achieved, strict=True):
        assert abs(got - wanted) <= 0.1 * wanted, achieved


def test_plain_locust_exits_with_the_reports_decision_not_on_any_failed_stream(
    tmp_path: Path,
) -> None:
    """Locust exits 1 when any request failed (--exit-code-on-error); a run whose SLO allows
    the failures it saw must exit 0, and one whose SLO does not, 3."""
    env = {**os.environ, "LOADTEST_API_KEY": API_KEY, "LOADTEST_JWT_SECRET": SECRET}
    codes = {}
    with TargetProcess(["--profile", "fixed", "--fault", "error=0.3"], env=TARGET_ENV) as target:
        for limit in ("0.9", "0.01"):
            slo = tmp_path / f"slo-{limit}.toml"
            slo.write_text(f'checks = ["error_rate < {limit}"]\nmin_samples = 5\n')
            out = tmp_path / f"run-{limit}"
            done = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "chat.py"),
                 "--headless", "-u", "2", "-r", "2", "-t", "3s", "--host", target.base_url,
                 "--loadtest-out", str(out), "--report-format", "json", "--think-time", "0.05",
                 "--slo", str(slo)],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            summary = json.loads((out / "summary.json").read_text())
            assert summary["counts"]["streams_failed"] > 0, done.stderr[-2000:]
            codes[limit] = done.returncode
    assert codes == {"0.9": 0, "0.01": 3}
