"""The rate-limit probe's ladder and tally, and reading its steps back from a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.analysis.ratelimit import first_refusal, rate_steps, read_rate_step_events
from loadtest.rate_probe import RateLadder, StepTally, parse_rates, refusal_kind


def test_rates_parse_and_must_be_positive() -> None:
    assert parse_rates("1,2, 4,8") == (1.0, 2.0, 4.0, 8.0)
    assert parse_rates("0.5") == (0.5,)
    for bad in ("", "1,0", "a,b", "-1"):
        with pytest.raises(ValueError, match="rates per second > 0"):
            parse_rates(bad)


def test_the_ladder_climbs_a_step_per_step_time_and_holds_the_last() -> None:
    ladder = RateLadder((1.0, 2.0, 4.0), step_s=5.0)
    steps = [ladder.step_at(t) for t in (0.0, 4.99, 5.0, 9.9, 10.0, 60.0, -1.0)]
    assert steps == [0, 0, 1, 1, 2, 2, 0]
    assert [ladder.interval_s(s) for s in range(3)] == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError):
        RateLadder((1.0,), step_s=0.0)


def test_refusals_are_error_frames_and_server_closes_not_timeouts() -> None:
    assert refusal_kind("error_frame", None) == "error_frame"
    assert refusal_kind("connection_lost", 1008) == "close 1008"
    assert refusal_kind("connection_lost", None) is None  # no close code: not the server's no
    assert refusal_kind("timeout", None) is None
    assert refusal_kind(None, None) is None


def test_a_step_tally_counts_each_outcome_and_the_first_refusal() -> None:
    tally = StepTally(step=2, rate_per_s=4.0, started_at=100.0)
    tally.add(completed=True, refusal=None, at=100.3)
    tally.add(completed=False, refusal="error_frame", at=101.5)
    tally.add(completed=False, refusal="error_frame", at=101.8)
    tally.add(completed=False, refusal="close 1008", at=102.0)
    tally.add(completed=False, refusal=None, at=102.1)  # a timeout
    event = tally.as_event(ended_at=105.0)
    assert event == {
        "step": 2, "rate_per_s": 4.0, "duration_s": 5.0, "sent": 5, "achieved_per_s": 1.0,
        "completed": 1, "refused": 3, "refused_by": {"error_frame": 2, "close 1008": 1},
        "other_failed": 1, "first_refusal_s": 1.5,
    }  # fmt: skip


def test_steps_add_up_over_users_and_the_first_refused_step_is_named(tmp_path: Path) -> None:
    def step(user: int, index: int, sent: int, refused: int) -> dict:
        return {"kind": "rate_step", "user": user, "step": index, "rate_per_s": 2.0**index,
                "sent": sent, "achieved_per_s": sent / 5, "completed": sent - refused,
                "refused": refused, "refused_by": {"error_frame": refused} if refused else {},
                "other_failed": 0}  # fmt: skip

    lines = [step(0, 0, 5, 0), step(1, 0, 5, 0), step(0, 1, 10, 0), step(1, 1, 10, 2),
             step(0, 2, 20, 9), {"kind": "open", "user": 0}]  # fmt: skip
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    events = read_rate_step_events(tmp_path)
    assert len(events) == 5
    steps = rate_steps(events)
    assert [(s["step"], s["users"], s["sent"], s["refused"]) for s in steps] == [
        (0, 2, 10, 0), (1, 2, 20, 2), (2, 1, 20, 9),
    ]  # fmt: skip
    assert steps[1]["achieved_per_s"] == 2.0 and steps[2]["refused_by"] == {"error_frame": 9}
    first = first_refusal(steps)
    assert first is not None and first["rate_per_s"] == 2.0 and first["step"] == 1
    assert first_refusal(rate_steps(events[:3])) is None
    assert read_rate_step_events(tmp_path / "nowhere") == []
