"""ReconnectPolicy and ReconnectSchedule: the guide's backoff, exactly, with no clock involved."""

from __future__ import annotations

import random

import pytest

from loadtest.errors import UsageError
from loadtest.reconnect import ReconnectPolicy, ReconnectSchedule


def drain(schedule: ReconnectSchedule, limit: int = 20) -> list[float | None]:
    """Delays handed out until (and including) the first give-up."""
    delays: list[float | None] = []
    for _ in range(limit):
        delay = schedule.next_delay()
        delays.append(delay)
        if delay is None:
            break
    return delays


class TestBackoffSequence:
    def test_defaults_are_the_guides_2_4_8_16_30_then_give_up(self) -> None:
        schedule = ReconnectPolicy().schedule()
        assert drain(schedule) == [2.0, 4.0, 8.0, 16.0, 30.0, None]
        assert schedule.gave_up
        assert schedule.attempt == 5

    def test_stays_given_up_until_reset(self) -> None:
        schedule = ReconnectPolicy().schedule()
        drain(schedule)
        assert schedule.next_delay() is None
        assert schedule.next_delay() is None

    def test_reset_on_success_restarts_at_the_first_step(self) -> None:
        schedule = ReconnectPolicy().schedule()
        assert [schedule.next_delay(), schedule.next_delay(), schedule.next_delay()] == [2, 4, 8]
        schedule.reset()
        assert schedule.attempt == 0
        assert drain(schedule) == [2.0, 4.0, 8.0, 16.0, 30.0, None]
        schedule.reset()
        assert not schedule.gave_up
        assert schedule.next_delay() == 2.0

    def test_cap_bounds_every_delay(self) -> None:
        policy = ReconnectPolicy(base_s=3.0, cap_s=10.0, max_attempts=6)
        assert drain(policy.schedule()) == [3.0, 9.0, 10.0, 10.0, 10.0, 10.0, None]

    def test_huge_attempt_numbers_stay_at_the_cap(self) -> None:
        assert ReconnectPolicy().delay_s(5000) == 30.0

    def test_zero_attempts_never_reconnects(self) -> None:
        assert drain(ReconnectPolicy(max_attempts=0).schedule()) == [None]

    def test_attempt_is_one_based(self) -> None:
        with pytest.raises(ValueError):
            ReconnectPolicy().delay_s(0)


class TestJitter:
    def test_stays_within_bounds(self) -> None:
        policy = ReconnectPolicy(jitter=0.5)
        rng = random.Random(7)
        for attempt in range(1, 6):
            nominal = policy.nominal_delay_s(attempt)
            for _ in range(200):
                assert 0.5 * nominal <= policy.delay_s(attempt, rng) <= nominal

    def test_full_jitter_never_exceeds_the_cap(self) -> None:
        policy = ReconnectPolicy(jitter=1.0, max_attempts=10)
        delays = drain(policy.schedule(random.Random(1)))
        assert delays[-1] is None
        assert all(d is not None and 0.0 <= d <= 30.0 for d in delays[:-1])

    def test_is_reproducible_with_a_seed(self) -> None:
        policy = ReconnectPolicy(jitter=0.3)
        first = drain(policy.schedule(random.Random(42)))
        second = drain(policy.schedule(random.Random(42)))
        assert first == second
        assert first != [2.0, 4.0, 8.0, 16.0, 30.0, None]  # jitter did something

    def test_a_seed_draws_what_a_random_of_that_seed_would(self) -> None:
        policy = ReconnectPolicy(jitter=0.3)
        assert drain(policy.schedule(seed=42)) == drain(policy.schedule(random.Random(42)))

    def test_a_seeded_schedule_makes_no_random_until_a_jittered_delay(self) -> None:
        schedule = ReconnectPolicy(jitter=0.3).schedule(seed=42)
        assert schedule._rng is None  # an idle connection never pays for one
        schedule.next_delay()
        assert schedule._rng is not None

    def test_zero_jitter_does_not_consume_randomness(self) -> None:
        rng = random.Random(3)
        ReconnectPolicy().schedule(rng).next_delay()
        assert rng.random() == random.Random(3).random()


class TestShouldReconnect:
    @pytest.mark.parametrize("status", [401, 403, 404])
    def test_never_after_401_403_404(self, status: int) -> None:
        assert not ReconnectPolicy().should_reconnect(None, status)

    @pytest.mark.parametrize("status", [429, 500, 502, 503])
    def test_retries_overload_and_server_errors(self, status: int) -> None:
        assert ReconnectPolicy().should_reconnect(None, status)

    def test_not_after_a_normal_close_unless_configured(self) -> None:
        assert not ReconnectPolicy().should_reconnect(1000, None)
        assert ReconnectPolicy(reconnect_on_normal_close=True).should_reconnect(1000, None)

    @pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013, 4000])
    def test_after_abnormal_closes(self, code: int) -> None:
        assert ReconnectPolicy().should_reconnect(code, None)

    def test_after_a_connection_lost_without_code_or_status(self) -> None:
        assert ReconnectPolicy().should_reconnect(None, None)

    def test_auth_close_is_not_retried_blindly(self) -> None:
        # The caller refreshes the token once instead (is_auth_failure).
        assert not ReconnectPolicy().should_reconnect(4401, None)

    def test_handshake_status_takes_precedence(self) -> None:
        assert not ReconnectPolicy().should_reconnect(1006, 404)

    def test_no_retry_statuses_are_configurable(self) -> None:
        policy = ReconnectPolicy(no_retry_statuses={401, 403, 404, 429})
        assert not policy.should_reconnect(None, 429)
        assert isinstance(policy.no_retry_statuses, frozenset)


class TestIsAuthFailure:
    @pytest.mark.parametrize(
        ("code", "status"), [(None, 401), (4001, None), (4401, None), (1008, None)]
    )
    def test_recognises_401_and_auth_close_codes(
        self, code: int | None, status: int | None
    ) -> None:
        assert ReconnectPolicy().is_auth_failure(code, status)

    @pytest.mark.parametrize(
        ("code", "status"), [(None, 403), (None, 404), (1006, None), (1000, None), (None, None)]
    )
    def test_other_failures_are_not_auth(self, code: int | None, status: int | None) -> None:
        assert not ReconnectPolicy().is_auth_failure(code, status)

    def test_auth_codes_are_configurable(self) -> None:
        policy = ReconnectPolicy(auth_close_codes={4003})
        assert policy.is_auth_failure(4003, None)
        assert not policy.is_auth_failure(4401, None)


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": 0}, {"cap_s": -1}, {"max_attempts": -1}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_bad_values_are_usage_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError) as info:
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_policy_is_immutable_and_shareable() -> None:
    policy = ReconnectPolicy()
    with pytest.raises(AttributeError):
        policy.base_s = 1.0  # type: ignore[misc]
    assert hash(policy) == hash(ReconnectPolicy())
