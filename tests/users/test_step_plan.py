"""A step load as a state machine: each step is held from when its load is reached."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loadtest.errors import UsageError
from loadtest.users.shapes import DEFAULT_STEPS, StepLoadShape, StepPlan, parse_steps


def test_a_step_is_held_from_when_its_users_are_spawned_not_when_asked_for() -> None:
    plan = StepPlan((2, 4), hold_s=10)
    assert plan.wanted(0.0) == 0
    assert not plan.reached(1.0, users=1)  # Locust still ramping
    assert plan.reached(3.0, users=2)
    assert plan.wanted(12.9) == 0  # 9.9 s held
    assert plan.wanted(13.0) == 1
    assert plan.reached(15.0, users=4)
    assert plan.wanted(25.0) is None
    first, second = (step.to_json() for step in plan.records)
    assert first == {"index": 0, "users": 2, "rate": None, "requested_s": 0.0,
                     "reached_s": 3.0, "ended_s": 13.0}  # fmt: skip
    assert second["requested_s"] == 13.0 and second["reached_s"] == 15.0
    assert second["ended_s"] == 25.0


def test_an_open_model_step_is_reached_when_announced() -> None:
    plan = StepPlan((5.0, 10.0), hold_s=4, open_model=True)
    assert plan.wanted(0.0) == 0
    assert plan.records[0].reached_s == 0.0 and plan.records[0].rate == 5.0
    assert plan.wanted(4.0) == 1


def test_a_stopped_run_ends_the_current_step_short() -> None:
    plan = StepPlan((2, 4), hold_s=10)
    plan.wanted(0.0)
    plan.reached(0.5, users=2)
    plan.close(6.0)
    assert plan.records[-1].ended_s == 6.0


@pytest.mark.parametrize(
    ("steps", "rates", "hold", "message"),
    [
        ("2,4", "5", "30s", "not both"),
        ("2,x", "", "30s", "--steps takes positive whole numbers"),
        ("2,2.5", "", "30s", "--steps takes positive whole numbers"),
        ("", "0,5", "30s", "--rate-steps takes positive arrival rates"),
        ("2", "", "soon", "--step-time takes a duration"),
    ],
)
def test_bad_step_options_are_one_line_usage_errors(
    steps: str, rates: str, hold: str, message: str
) -> None:
    options = SimpleNamespace(steps=steps, rate_steps=rates, step_time=hold, arrival_rate=0)
    with pytest.raises(UsageError, match=message):
        StepLoadShape.plan_from(options)


def test_without_steps_the_default_doubling_is_used_and_fractions_of_seconds_work() -> None:
    options = SimpleNamespace(steps="", rate_steps="", step_time="2.5", arrival_rate=0)
    plan = StepLoadShape.plan_from(options)
    assert plan.loads == DEFAULT_STEPS and plan.hold_s == 2.5 and not plan.open_model
    assert parse_steps("1.5, 3", what="--rate-steps", whole=False) == (1.5, 3.0)
