"""Thousands of reconnects leak neither file descriptors nor greenlets."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import greenlet
import pytest

from loadtest.auth import MintedTokens
from loadtest.protocol import Outcome
from loadtest.reconnect import ReconnectPolicy
from loadtest.session import ConsultationSession, Endpoints, SessionConfig
from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV

RECONNECTS = 2000


class Counting:
    def __init__(self) -> None:
        self.reconnects = 0

    def connected(
        self, connect_ms: float, reconnect_ms: float | None, receive_clock: str
    ) -> None:
        self.reconnects += reconnect_ms is not None

    def __getattr__(self, name: str):
        return lambda *args: None


@pytest.fixture(scope="module")
def dropping_target() -> Iterator[TargetProcess]:
    """Every reply is cut with close 1011 at its middle chunk: one reconnect per message."""
    args = ["--profile", "fixed", "--ttfc-ms", "0", "--chunk-gap-ms", "0", "--chunks", "2",
            "--fault", "drop=1"]  # fmt: skip
    with TargetProcess(args, env=TARGET_ENV) as running:
        yield running


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_greenlets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj)


def test_thousands_of_reconnects_leave_no_descriptor_or_greenlet_behind(
    dropping_target: TargetProcess,
) -> None:
    config = SessionConfig(
        endpoints=Endpoints.from_base_url(dropping_target.base_url),
        api_key=API_KEY,
        consultation_id="c-hygiene",
        stream_timeout_s=5.0,
        heartbeat_interval_s=60.0,  # a heartbeat greenlet per connection, to be reaped too
        reconnect=ReconnectPolicy(base_s=0.001, cap_s=0.001, max_attempts=5),
    )
    observer = Counting()
    session = ConsultationSession(config, observer, MintedTokens(SECRET))
    session.start()

    def drop_once() -> None:
        stream = session.send_user_message("drop me")
        assert stream.outcome is Outcome.FAILED and stream.error_kind == "connection_lost"

    for _ in range(50):  # warm up: caches, pools, the first allocations of everything
        drop_once()
    descriptors, greenlets = open_descriptors(), live_greenlets()
    for _ in range(RECONNECTS):
        drop_once()
    session.close()

    assert observer.reconnects >= RECONNECTS
    assert open_descriptors() <= descriptors
    assert live_greenlets() <= greenlets + 2  # the close's own, if not yet finished
