"""Connection lifecycle under faults: reconnect policy, auth refresh, dead-link detection.

Every scenario runs against the reference target over real sockets on 127.0.0.1; backoff
delays go through an injected sleep so their sequence is asserted, not timed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import gevent
import pytest

from loadtest.auth import MintedTokens
from loadtest.protocol import Outcome
from loadtest.reconnect import ReconnectPolicy
from loadtest.session import ConsultationSession, SessionEnded
from loadtest.target.process import TargetProcess
from tests.targets import SECRET, TARGET_ENV
from tests.test_session import Observed, config

TOKENS = MintedTokens(SECRET)
QUICK = ReconnectPolicy(cap_s=0.05)  # the guide's policy with every delay capped at 50 ms


class RecordingSleep:
    """Records every backoff delay; really sleeps only if told to (scaled)."""

    def __init__(self, scale: float = 0.0) -> None:
        self.delays: list[float] = []
        self.scale = scale

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        gevent.sleep(seconds * self.scale)


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    args = ["--profile", "fixed", "--ttfc-ms", "20", "--chunk-gap-ms", "5", "--chunks", "10"]
    with TargetProcess(args, env=TARGET_ENV) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults_left(target: TargetProcess) -> Iterator[None]:
    yield
    for kind in list(target.faults()):
        target.clear_fault(kind)


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        gevent.sleep(0.01)


def test_drop_mid_stream_counts_the_stream_and_reconnects_after_one_backoff_step(
    target: TargetProcess,
) -> None:
    observed, sleep = Observed(), RecordingSleep(scale=1.0)
    session = ConsultationSession(config(target, reconnect=QUICK), observed, TOKENS, sleep=sleep)
    session.start()
    target.set_fault("drop", "1")
    stream = session.send_user_message("Plan my week")
    target.clear_fault("drop")
    assert stream.outcome is Outcome.FAILED
    assert (stream.error_kind, stream.close_code) == ("connection_lost", 1011)
    wait_for(lambda: len(observed.connects) == 2)
    assert sleep.delays == [0.05], "one backoff step, the policy's first"
    reconnect_ms = observed.connects[1][1]
    assert reconnect_ms is not None and reconnect_ms >= 50.0
    assert session.send_user_message("again").outcome is Outcome.COMPLETED
    session.close()
    assert observed.disconnects == [1011]


def test_backoff_follows_the_guides_sequence_then_gives_up(target: TargetProcess) -> None:
    observed, sleep = Observed(), RecordingSleep()
    session = ConsultationSession(config(target), observed, TOKENS, sleep=sleep)
    session.start()
    target.set_fault("refuse", "1")
    target.set_fault("drop", "1")
    session.send_user_message("Hello")  # dropped, then every reconnect is refused with 503
    wait_for(lambda: session.ended is not None)
    assert sleep.delays == [2.0, 4.0, 8.0, 16.0, 30.0]
    assert observed.failures == {"503": 5}
    assert observed.counts["reconnect_gave_up"] == 1
    with pytest.raises(SessionEnded):
        session.send_user_message("anyone?")


def test_401_refreshes_the_token_once_then_gives_up_without_a_retry_loop(
    target: TargetProcess,
) -> None:
    observed, sleep = Observed(), RecordingSleep()
    wrong = MintedTokens("not-the-target-secret-0123456789abcdef")
    settings = config(target, consultation_id="c-401")  # straight to the WebSocket handshake
    session = ConsultationSession(settings, observed, wrong, sleep=sleep)
    with pytest.raises(SessionEnded):
        session.start()
    assert observed.failures == {"401": 2}
    assert observed.counts["token_refreshed"] == 1
    assert sleep.delays == []


def test_404_is_not_retried(tmp_path) -> None:
    with TargetProcess(["--strict", "--profile", "fixed"], env=TARGET_ENV) as strict:
        observed, sleep = Observed(), RecordingSleep()
        session = ConsultationSession(
            config(strict, consultation_id="no-such-consultation"), observed, TOKENS, sleep=sleep
        )
        with pytest.raises(SessionEnded):
            session.start()
    assert observed.failures == {"404": 1}
    assert sleep.delays == []


def test_token_expiry_mid_session_refreshes_and_reconnects_at_once(target: TargetProcess) -> None:
    observed, sleep = Observed(), RecordingSleep()
    session = ConsultationSession(config(target), observed, TOKENS, sleep=sleep)
    session.start()
    target.set_fault("expire_token", "1")
    stream = session.send_user_message("Hi")
    target.clear_fault("expire_token")
    assert stream.close_code == 4001
    wait_for(lambda: len(observed.connects) == 2)
    assert observed.counts["token_refreshed"] == 1
    assert sleep.delays == [], "an auth close reconnects at once after the refresh"
    session.close()


def test_swallowed_pongs_are_detected_within_timeout_times_misses(target: TargetProcess) -> None:
    observed = Observed()
    settings = config(
        target, heartbeat_interval_s=0.1, pong_timeout_s=0.15, max_missed_pongs=2,
        reconnect=ReconnectPolicy(max_attempts=0),
    )  # fmt: skip
    target.set_fault("swallow_pong", "1")
    session = ConsultationSession(settings, observed, TOKENS)
    session.start()
    started = time.monotonic()
    wait_for(lambda: observed.disconnects, timeout_s=3)
    elapsed = time.monotonic() - started
    assert observed.counts["pong_missed"] == 2
    assert elapsed <= 0.1 + 2 * 0.15 + 0.1 + 0.25  # first ping + 2 timeouts + slack
    assert observed.disconnects == [1006]


def test_restart_brings_every_client_back_and_records_reconnect_time(
    target: TargetProcess,
) -> None:
    observed = Observed()
    policy = ReconnectPolicy(cap_s=0.1, max_attempts=20)
    sessions = [
        ConsultationSession(config(target, reconnect=policy), observed, TOKENS, user_index=i)
        for i in range(20)
    ]
    for session in sessions:
        session.start()
    target.restart(refuse_s=0.5)
    wait_for(lambda: len(observed.connects) == 40, timeout_s=10)
    reconnect_times = [ms for _, ms in observed.connects[20:]]
    assert all(ms is not None and ms >= 400 for ms in reconnect_times)
    assert all(session.ended is None for session in sessions)
    assert set(observed.disconnects) == {1012}
    for session in sessions:
        session.close()


def test_users_log_in_through_the_target_and_chat(target: TargetProcess) -> None:
    from loadtest.auth import LoginTokens

    observed = Observed()
    logins = LoginTokens(target.base_url, [("ana@example.com", "pw1"), ("bo@example.com", "pw2")])
    sessions = [
        ConsultationSession(config(target), observed, logins, user_index=i) for i in range(2)
    ]
    for session in sessions:
        session.start()
        assert session.send_user_message("hello").outcome is Outcome.COMPLETED
        session.close()
    assert observed.counts["rest ok"] == 2


def test_an_expired_token_is_refreshed_before_reconnecting(target: TargetProcess) -> None:
    observed = Observed()
    short = MintedTokens(SECRET, ttl_s=3)  # inside the 5 s safety margin: stale at once
    settings = config(target, consultation_id="c-expiry", reconnect=QUICK)
    session = ConsultationSession(settings, observed, short, sleep=RecordingSleep(scale=1.0))
    session.start()
    assert observed.counts["token_refreshed"] == 0, "a fresh token is used as it is"
    target.set_fault("drop", "1")
    session.send_user_message("Plan my week")
    target.clear_fault("drop")
    wait_for(lambda: len(observed.connects) == 2)
    assert observed.counts["token_refreshed"] == 1, "refreshed before reconnecting, not on a 401"
    assert not observed.failures
    session.close()
