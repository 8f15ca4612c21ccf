"""The connection supervisor: reconnect jitter is reproducible from --seed, per user."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from loadtest.reconnect import ReconnectPolicy
from loadtest.session import ConsultationSession, Endpoints, SessionConfig, SessionEnded


class Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def backoff_delays(seed: int, user_index: int) -> list[float]:
    """The delays a user waits while the target refuses every connection."""
    delays: list[float] = []
    config = SessionConfig(
        endpoints=Endpoints.from_base_url(f"ws://127.0.0.1:{_closed_port()}"),
        consultation_id="c-1",
        heartbeat_interval_s=None,
        reconnect=ReconnectPolicy(max_attempts=4, jitter=0.5),
        seed=seed,
    )
    session = ConsultationSession(config, Quiet(), user_index=user_index, sleep=delays.append)
    with pytest.raises(SessionEnded):  # the policy gave up, as intended
        session.start()
    assert session.ended == "reconnect attempts exhausted"
    return delays


def test_the_same_seed_and_user_wait_the_same_jittered_delays() -> None:
    assert backoff_delays(7, 3) == backoff_delays(7, 3)
    assert len(backoff_delays(7, 3)) == 4


def test_other_users_or_seeds_draw_other_delays() -> None:
    assert backoff_delays(7, 3) != backoff_delays(7, 4)
    assert backoff_delays(7, 3) != backoff_delays(8, 3)
