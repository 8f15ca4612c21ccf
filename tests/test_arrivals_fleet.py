"""Open-model generators across workers interleave their arrivals instead of firing together."""

from __future__ import annotations

import pytest

from loadtest.arrivals import fleet_phase


@pytest.mark.parametrize("workers", [2, 4, 5, 8])
def test_one_driver_per_worker_spreads_evenly_over_one_gap(workers: int) -> None:
    phases = sorted(fleet_phase(0, workers, worker, workers) for worker in range(workers))
    assert phases == pytest.approx([k / workers for k in range(workers)])


def test_several_drivers_per_worker_take_every_fleet_slot_once() -> None:
    workers, users = 2, 6
    phases = {fleet_phase(local, users, worker, workers) for worker in range(workers)
              for local in range(users // workers)}  # fmt: skip
    assert sorted(phases) == pytest.approx([k / users for k in range(users)])


def test_a_single_process_keeps_distinct_phases_per_driver() -> None:
    assert [fleet_phase(local, 4, 0, 1) for local in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_workers_of_unknown_count_are_never_in_lockstep() -> None:
    phases = [fleet_phase(0, 1, worker, None) for worker in range(8)]
    assert len({round(phase, 6) for phase in phases}) == 8
    assert all(0.0 <= phase < 1.0 for phase in phases)
