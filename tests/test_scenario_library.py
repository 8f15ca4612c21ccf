"""Every shipped scenario runs through `loadtest run` and through plain `locust -f`, and each
way writes a valid run directory that ends in a decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.launch import shipped_scenarios
from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
#: What each scenario needs beyond -u/-t to do its thing in a few seconds.
EXTRA: dict[str, list[str]] = {
    "arrival": ["--arrival-rate", "4"],
    "storm": ["--storm-at", "1", "--storm-refuse", "0.5", "--reconnect-base", "1.1"],
    "churn": ["--lifetime", "1-2", "--rejoin-after", "0-0.5"],
    "spike": ["--spike-at", "1", "--spike-duration", "1", "--spike-users", "4"],
    "idle": ["--heartbeat-interval", "1"],
    "capacity": ["--steps", "1,2", "--step-time", "1"],
}
NAMES = [name for name, _, _ in shipped_scenarios()]


def test_every_scenario_file_is_listed_with_what_it_answers() -> None:
    assert sorted(NAMES) == sorted(p.stem for p in SCENARIOS.glob("*.py"))
    for name, summary, usage in shipped_scenarios():
        assert summary and usage.startswith(f"loadtest run {name}"), name


def assert_valid_run_dir(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "loadtest.summary/1"
    assert json.loads((out / "run.json").read_text())["ended_utc"]
    assert (out / "report.json").exists() and (out / "streams.csv").exists()
    assert summary["slo"]["verdict"] == "pass", summary["slo"]
    return summary


@pytest.mark.parametrize("name", NAMES)
def test_loadtest_run_runs_the_scenario(name: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    load = [] if name == "arrival" else ["-u", "2"]
    extra = [a for a in EXTRA.get(name, []) if name != "arrival"]
    arrival = EXTRA["arrival"] if name == "arrival" else []
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", name, *load, *arrival, "-t", "4s",
         "--out", str(out), "--format", "json", "--target-args", "--profile fixed",
         "--", "--think-time", "0.1", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_valid_run_dir(out)


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(["--profile", "fixed"], env=TARGET_ENV) as running:
        yield running


@pytest.mark.parametrize("name", NAMES)
def test_plain_locust_runs_the_scenario(name: str, target: TargetProcess, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "LOADTEST_API_KEY": API_KEY, "LOADTEST_JWT_SECRET": SECRET}
    users = ["-u", "1"] if name == "arrival" else ["-u", "2", "-r", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SCENARIOS / f"{name}.py"), "--headless",
         *users, "-t", "4s", "--host", target.base_url, "--loadtest-out", str(out),
         "--report-format", "json", "--think-time", "0.1", *EXTRA.get(name, [])],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_valid_run_dir(out)
