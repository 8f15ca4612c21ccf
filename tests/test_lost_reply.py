"""A reply that never comes costs exactly one failed stream, end to end.

The reference target's ``lose`` fault answers some ``user_message``s with nothing at all; its
ground truth names them. A session with a short stream timeout must then fail exactly those
streams and complete every other one: the lost reply must not poison the rest of the
conversation (it once did: 10 % lost messages showed as ~65 % failed streams).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from loadtest.auth import MintedTokens
from loadtest.protocol import Outcome, Stream, ViolationKind
from loadtest.session import ConsultationSession, Endpoints, SessionConfig
from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV

MESSAGES = 24
CHUNKS = 3


class Observed:
    """A SessionObserver that keeps streams and violations, and ignores the rest."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.violations: Counter[ViolationKind] = Counter()

    def stream_finished(self, stream: Stream) -> None:
        self.streams.append(stream)

    def violation(self, kind: ViolationKind) -> None:
        self.violations[kind] += 1

    def __getattr__(self, name: str):  # connected, stream_started, rest_call, …
        return lambda *args, **kwargs: None


def lost_in_ground_truth(path: Path, streams: int) -> set[str]:
    """The client message ids the target lost, once all ``streams`` lines are flushed."""
    deadline = time.monotonic() + 5
    while path.read_text().count('"event":"stream"') < streams:  # flushed every second
        assert time.monotonic() < deadline, "the target never recorded every stream"
        time.sleep(0.05)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["client_message_id"] for r in records
            if r["event"] == "stream" and r["outcome"] == "lost"}


def test_each_lost_message_fails_one_stream_and_no_other(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    args = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "2",
            "--chunks", str(CHUNKS), "--fault", "lose=0.25", "--seed", "5",
            "--ground-truth", str(truth)]
    with TargetProcess(args, env=TARGET_ENV) as target:
        config = SessionConfig(endpoints=Endpoints.from_base_url(target.base_url),
                               api_key=API_KEY, stream_timeout_s=0.3,
                               heartbeat_interval_s=None)
        observed = Observed()
        session = ConsultationSession(config, observed, MintedTokens(SECRET))
        session.start()
        try:
            streams = [session.send_user_message(f"message {n}") for n in range(MESSAGES)]
        finally:
            session.close()
        lost = lost_in_ground_truth(truth, MESSAGES)

    assert 0 < len(lost) < MESSAGES // 2, "the seed should lose a few messages, not most"
    failed = {s.user_message_id for s in streams if s.outcome is Outcome.FAILED}
    assert failed == lost
    assert all(s.error_kind == "timeout" for s in streams if s.outcome is Outcome.FAILED)
    completed = [s for s in streams if s.outcome is Outcome.COMPLETED]
    assert len(completed) == MESSAGES - len(lost)
    assert all(s.chunks == CHUNKS for s in completed)
    assert observed.violations == Counter()
