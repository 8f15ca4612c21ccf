"""Stream rows carry wall-clock times that agree with events.jsonl, however long the run."""

from __future__ import annotations

import time
from time import perf_counter

import pytest

from loadtest.users import recording


def test_a_row_time_follows_the_wall_clock_when_it_is_stepped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stamp = perf_counter()
    before = recording.epoch_of(stamp)
    real_time = time.time
    monkeypatch.setattr(recording.time, "time", lambda: real_time() + 5.0)  # NTP steps 5 s
    after = recording.epoch_of(stamp)
    assert after - before == pytest.approx(5.0, abs=0.05)


def test_a_row_time_is_the_moment_of_its_stamp() -> None:
    stamp = perf_counter() - 2.0  # a stream sent two seconds ago
    assert recording.epoch_of(stamp) == pytest.approx(time.time() - 2.0, abs=0.05)
