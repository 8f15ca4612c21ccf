"""The conversation and rate-limit scenarios, run for seconds against the reference target.

A conversation user creates a consultation per conversation, talks a few turns and leaves; the
rate-limit probe counts refusals against a target with the ``rate_limit`` fault and none
against one without it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.analysis.ratelimit import first_refusal, rate_steps, read_rate_step_events
from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV
from tests.test_scenario_library import SCENARIOS, assert_valid_run_dir

FAST_TARGET = ["--profile", "fixed", "--chunks", "2", "--ttfc-ms", "5"]
#: Seconds-long conversations: pauses of ~0.2 s, 2-3 turns, half the turns batched.
QUICK_CONVERSATIONS = ["--think-median", "0.2", "--think-sigma", "0.5", "--think-cap", "1",
                       "--conversation-turns", "2-3", "--batch-share", "0.5"]  # fmt: skip
#: 2/s is well under a 5-per-second limit, 10/s well over it.
PROBE = ["--probe-rates", "2,10", "--probe-step-time", "1.5"]


def loadtest_run(scenario: str, out: Path, target_args: list[str], extra: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", scenario, "-u", "2", "-t", "5s",
         "--out", str(out), "--format", "json", "--target-args", " ".join(target_args),
         "--", *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return assert_valid_run_dir(out)


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(FAST_TARGET, env=TARGET_ENV) as running:
        yield running


def plain_locust(scenario: str, target: TargetProcess, out: Path, extra: list[str]) -> dict:
    env = {**os.environ, "LOADTEST_API_KEY": API_KEY, "LOADTEST_JWT_SECRET": SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SCENARIOS / f"{scenario}.py"), "--headless",
         "-u", "2", "-r", "2", "-t", "5s", "--host", target.base_url, "--loadtest-out", str(out),
         "--report-format", "json", *extra],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return assert_valid_run_dir(out)


def streams_per_consultation(out: Path) -> Counter[str]:
    with (out / "streams.csv").open(newline="") as rows:
        return Counter(row["consultation_id"] for row in csv.DictReader(rows))


def closes_by(out: Path) -> Counter[str]:
    lines = (out / "events.jsonl").read_text().splitlines()
    return Counter(e["initiator"] for e in map(json.loads, lines) if e["kind"] == "close")


def assert_conversations(summary: dict, out: Path) -> None:
    per_consultation = streams_per_consultation(out)
    # Two users held more than two conversations, each in a consultation of its own...
    assert len(per_consultation) > 2
    # (each user's last connection may be cut by the end of the run before its first message)
    assert 0 <= summary["counts"]["connections_opened"] - len(per_consultation) <= 2
    # ...of at most three turns each (the last ones may have been cut by the end of the run)...
    assert max(per_consultation.values()) <= 3
    assert Counter(per_consultation.values())[1] < len(per_consultation) / 2
    # ...and left them themselves, with close 1000.
    assert closes_by(out)["client"] >= len(per_consultation) - 2
    assert summary["counts"]["streams_failed"] == 0
    assert summary["counts"]["rest_failures"] == 0


def test_conversation_through_loadtest_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = loadtest_run("conversation", out, FAST_TARGET, QUICK_CONVERSATIONS)
    assert_conversations(summary, out)


def test_conversation_through_plain_locust(target: TargetProcess, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = plain_locust("conversation", target, out, QUICK_CONVERSATIONS)
    assert_conversations(summary, out)


def test_the_probe_finds_the_rate_limit_of_a_limited_target(tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = loadtest_run(
        "ratelimit", out, [*FAST_TARGET, "--fault", "rate_limit=5/1"], ["-u", "1", *PROBE]
    )
    refused = summary["counts"]["error_frames"]
    assert refused > 0
    assert summary["breakdowns"]["streams_failed"]["by_error_kind"] == {"error_frame": refused}
    steps = rate_steps(read_rate_step_events(out))
    assert [step["rate_per_s"] for step in steps] == [2.0, 10.0]
    assert steps[0]["refused"] == 0 and steps[0]["sent"] >= 2
    # a refusal of the message in flight when the run stops may miss its step's line
    assert 0 <= refused - sum(step["refused"] for step in steps) <= 1
    first = first_refusal(steps)
    assert first is not None and first["rate_per_s"] == 10.0
    assert first["refused_by"] == {"error_frame": first["refused"]}
    assert first["achieved_per_s"] > 5.0  # it did send faster than the limit
    assert summary["breakdowns"]["error_frames"]["by_code"] == {"rate_limited": refused}
    assert summary["rate_limit"]["first_refusal"] == first


def test_the_probe_counts_no_refusal_where_there_is_no_limit(
    target: TargetProcess, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    summary = plain_locust("ratelimit", target, out, PROBE)
    assert summary["counts"]["error_frames"] == 0
    assert summary["counts"]["streams_failed"] == 0
    steps = rate_steps(read_rate_step_events(out))
    assert [step["rate_per_s"] for step in steps] == [2.0, 10.0]
    assert steps[1]["users"] == 2 and steps[1]["sent"] > steps[0]["sent"]
    assert first_refusal(steps) is None
    assert summary["rate_limit"]["first_refusal"] is None


@pytest.mark.parametrize(
    ("scenario", "bad", "says"),
    [
        ("conversation", ["--batch-share", "2"], "--batch-share is a share between 0 and 1"),
        ("ratelimit", ["--probe-rates", "fast"], "--probe-rates"),
        ("capacity", ["--steps", "2,x"], "--steps takes positive whole numbers"),
    ],
)
def test_a_bad_scenario_option_ends_the_run_at_start_with_one_line(
    scenario: str, bad: list[str], says: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(SCENARIOS / f"{scenario}.py"), "--headless",
         "-u", "1", "-t", "5s", "--host", "http://127.0.0.1:9", "--loadtest-out",
         str(tmp_path / "run"), *bad],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("loadtest: error:")]
    assert len(errors) == 1 and says in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
