"""The steady state waits for the ramp's first connection attempts, not only for spawning."""

from __future__ import annotations

from loadtest.users.ramp import RampTracker, fleet_connected_at


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_ramp_has_connected_when_its_last_user_finished_its_first_attempt() -> None:
    clock = Clock()
    connected: list[float] = []
    ramp = RampTracker(on_connected=lambda: connected.append(clock.now), clock=clock)
    first, second = ramp.join(), ramp.join()
    assert first is not None and second is not None
    clock.now = 101.0
    ramp.spawning_complete()
    assert ramp.spawning_completed == 101.0 and ramp.connected_at is None
    clock.now = 102.5
    first.done()
    assert ramp.connected_at is None
    clock.now = 104.0
    second.done()
    assert ramp.connected_at == 104.0 and connected == [104.0]


def test_a_ramp_already_connected_at_spawning_complete_starts_there() -> None:
    clock = Clock()
    ramp = RampTracker(clock=clock)
    ticket = ramp.join()
    assert ticket is not None
    ticket.done()
    assert ramp.connected_at is None, "spawning has not completed: more users may come"
    clock.now = 105.0
    ramp.spawning_complete()
    assert ramp.connected_at == 105.0


def test_a_ticket_counts_once_however_many_ways_its_user_ends() -> None:
    ramp = RampTracker(clock=Clock())
    early, late = ramp.join(), ramp.join()
    assert early is not None and late is not None
    ramp.spawning_complete()
    early.done()
    early.done()  # connected, then stopped: still one user
    assert ramp.connected_at is None
    late.done()
    assert ramp.connected_at is not None


def test_users_started_after_the_ramp_are_not_waited_for() -> None:
    ramp = RampTracker(clock=Clock())
    ramp.spawning_complete()
    assert ramp.join() is None
    assert ramp.connected_at == 100.0


def test_the_fleet_has_connected_once_every_worker_seen_has_said_so() -> None:
    assert fleet_connected_at({}, [], 5.0) is None
    assert fleet_connected_at({"a": 10.0}, ["a", "b"], 5.0) is None
    assert fleet_connected_at({"a": 10.0, "b": 12.0}, ["a", "b"], 5.0) == 12.0


def test_the_fleet_is_never_done_before_the_master_saw_spawning_complete() -> None:
    assert fleet_connected_at({"a": 10.0, "b": 12.0}, ["a", "b"], 13.0) == 13.0
