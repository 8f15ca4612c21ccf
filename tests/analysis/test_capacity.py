"""The capacity analysis: per step throughput, percentiles with intervals, attainment, goodput,
and the knee, on a synthetic step-load run whose curve is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadtest.analysis.capacity import capacity_sentence, find_knee, run_capacity
from loadtest.analysis.slo import parse_slo
from loadtest.metrics.stream_rows import StreamRowWriter
from loadtest.metrics.window import MetricWindow
from tests.analysis.rundirs import START, write_run_dir

STEP_USERS = (5, 10, 20, 40, 80)
STEP_S = 20
#: The synthetic backend saturates at 20 users: beyond, TTFC grows with the square of the load.
SATURATION_USERS = 20
SLO = 'min_samples = 20\nchecks = ["ttfc_ms.p95 < 300", "error_rate < 0.01"]'


def ttfc_ms_at(users: int) -> float:
    return 100.0 * max(1.0, (users / SATURATION_USERS) ** 2)


def step_run(tmp_path: Path, *, failures_from: int | None = None) -> Path:
    """Five 20 s steps; each second every user completes one stream (throughput = users/s
    up to saturation, flat beyond); ``failures_from``: that step on, 10 % of streams fail."""
    rng = np.random.default_rng(7)
    rows: list[dict] = []

    def fill(window: MetricWindow, second: int) -> None:
        step = second // STEP_S
        users = STEP_USERS[step]
        served = min(users, SATURATION_USERS)
        values = rng.lognormal(np.log(ttfc_ms_at(users)), 0.1, served)
        failed = served // 10 if failures_from is not None and step >= failures_from else 0
        window.record_many("ttfc_ms", values[failed:])
        window.record_many("stream_ms", values[failed:] * 3)
        window.count("streams_started", served)
        window.count("streams_completed", served - failed)
        window.count("streams_failed", failed)
        for index, value in enumerate(values):
            rows.append({
                "sent_utc": START + second + index / served / 2,
                "ttfc_ms": None if index < failed else value,
                "stream_ms": None if index < failed else 3 * value,
                "outcome": "failed" if index < failed else "completed",
            })  # fmt: skip

    run_dir = write_run_dir(tmp_path / "run", STEP_S * len(STEP_USERS), fill)
    (run_dir / "streams.csv").unlink()
    with StreamRowWriter(run_dir / "streams.csv") as writer:
        for row in rows:
            writer.write(row)
    run = json.loads((run_dir / "run.json").read_text())
    run["options"]["step_time"] = f"{STEP_S}s"
    run["load"]["steps"] = [
        {"index": i, "users": users, "rate": None, "requested_s": START + i * STEP_S - 0.4,
         "reached_s": START + i * STEP_S - 0.2, "ended_s": START + (i + 1) * STEP_S - 0.4}
        for i, users in enumerate(STEP_USERS)
    ]  # fmt: skip
    run["load"]["steps"][0] |= {"requested_s": START, "reached_s": START}
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


def test_the_knee_is_the_last_step_within_the_slo(tmp_path: Path) -> None:
    run_dir = step_run(tmp_path)
    capacity = run_capacity(run_dir, json.loads((run_dir / "run.json").read_text()),
                            parse_slo(SLO))  # fmt: skip
    assert capacity is not None
    assert capacity["knee"] == {"index": 2, "users": 20, "rate": None}
    assert capacity["first_failing"]["users"] == 40
    assert [s["slo_verdict"] for s in capacity["steps"]] == ["pass"] * 3 + ["fail"] * 2
    assert capacity["sentence"].startswith(
        "holds 20 concurrent users within ttfc_ms.p95 < 300, error_rate < 0.01; fails from 40"
    )


def test_each_step_reports_throughput_percentiles_with_intervals_and_goodput(
    tmp_path: Path,
) -> None:
    run_dir = step_run(tmp_path)
    capacity = run_capacity(run_dir, json.loads((run_dir / "run.json").read_text()),
                            parse_slo(SLO))  # fmt: skip
    assert capacity is not None
    for step in capacity["steps"]:
        users = step["users"]
        assert step["throughput_streams_per_s"] == min(users, SATURATION_USERS)
        ttfc = step["metrics"]["ttfc_ms"]
        low, high = ttfc["p95_ci"]
        assert low <= ttfc["p95"] <= high
        # lognormal σ 0.1: p95 is e^(1.645 σ) ≈ 1.18 × the median
        assert ttfc["p95"] == pytest.approx(1.18 * ttfc_ms_at(users), rel=0.06)
        within = step["slo_verdict"] == "pass"
        # every stream of a passing step is within 300 ms; of a failing one, none is
        assert step["slo_attainment"] == (1.0 if within else 0.0)
        assert step["goodput_streams_per_s"] == (step["throughput_streams_per_s"] if within
                                                 else 0.0)  # fmt: skip


def test_failed_streams_count_against_attainment(tmp_path: Path) -> None:
    run_dir = step_run(tmp_path, failures_from=1)
    capacity = run_capacity(run_dir, json.loads((run_dir / "run.json").read_text()),
                            parse_slo(SLO))  # fmt: skip
    assert capacity is not None
    first, second = capacity["steps"][:2]
    assert first["slo_attainment"] == 1.0
    assert second["slo_attainment"] == pytest.approx(0.9)
    assert capacity["knee"]["users"] == 5 and "error_rate < 0.01" in capacity["sentence"]


def test_without_an_slo_there_is_no_knee_but_the_throughput_peak(tmp_path: Path) -> None:
    run_dir = step_run(tmp_path)
    capacity = run_capacity(run_dir, json.loads((run_dir / "run.json").read_text()), None)
    assert capacity is not None and capacity["knee"] is None
    assert capacity["sentence"] == (
        "throughput peaks at 20 concurrent users (20 streams/s); no SLO file, so no knee"
    )


def test_a_run_without_steps_has_no_capacity_section(tmp_path: Path) -> None:
    run_dir = write_run_dir(tmp_path / "run", 5, lambda window, second: None)
    assert run_capacity(run_dir, json.loads((run_dir / "run.json").read_text()), None) is None


def test_the_knee_stops_at_the_first_step_that_does_not_pass() -> None:
    verdicts = [(2, "pass"), (4, "inconclusive"), (8, "pass")]
    steps = [{"index": i, "users": u, "rate": None, "slo_verdict": v, "checks": [],
              "throughput_streams_per_s": 1.0} for i, (u, v) in enumerate(verdicts)]  # fmt: skip
    knee, failing = find_knee(steps)
    assert knee is steps[0] and failing is steps[1]
    spec = parse_slo('checks = ["ttfc_ms.p95 < 300"]')
    assert capacity_sentence(steps, None, steps[0], spec).startswith("fails from the first step")
