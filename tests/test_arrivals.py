"""Arrival schedules: exact for constant, reproducible and right on average for Poisson."""

from __future__ import annotations

import itertools

import pytest

from loadtest.arrivals import ArrivalSchedule
from loadtest.errors import UsageError


def first(schedule: ArrivalSchedule, n: int) -> list[float]:
    return list(itertools.islice(schedule.offsets(), n))


def test_constant_rate_is_evenly_spaced() -> None:
    assert first(ArrivalSchedule(4.0), 4) == [0.0, 0.25, 0.5, 0.75]


def test_phase_shifts_a_constant_schedule_so_generators_interleave() -> None:
    assert first(ArrivalSchedule(2.0, phase=0.5), 3) == [0.25, 0.75, 1.25]


def test_poisson_is_reproducible_with_a_seed_and_differs_without() -> None:
    a = first(ArrivalSchedule(10.0, "poisson", seed=7), 50)
    assert a == first(ArrivalSchedule(10.0, "poisson", seed=7), 50)
    assert a != first(ArrivalSchedule(10.0, "poisson", seed=8), 50)
    assert a == sorted(a)


def test_poisson_mean_rate_is_the_asked_rate() -> None:
    offsets = first(ArrivalSchedule(50.0, "poisson", seed=1), 20_000)
    assert offsets[-1] / len(offsets) == pytest.approx(1 / 50.0, rel=0.03)


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(UsageError):
        ArrivalSchedule(rate)


def test_unknown_process_is_refused() -> None:
    with pytest.raises(UsageError):
        ArrivalSchedule(1.0, "bursty")
