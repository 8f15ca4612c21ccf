"""Properties of the protocol core, fed arbitrary frame sequences by hypothesis.

Whatever a server sends, and however the client interleaves its own calls, the tracker never
raises (its documented RuntimeErrors are for misuse, which the strategies avoid) and its counts
add up: every begun stream ends exactly once, chunks are counted only where they were accepted,
and every stream has one gap fewer than chunks.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.protocol import (
    Outcome,
    Stream,
    StreamFinished,
    StreamTracker,
    Violation,
    ViolationKind,
    parse_server_frame,
)

SETTINGS = settings(max_examples=300, deadline=None)
SERVER_TYPES = ["ai_message_start", "ai_message_chunk", "ai_message_complete",
                "template_created", "error", "ping", "pong"]
# A small pool, so ids collide often: cross-talk, duplicates and late replies all happen.
IDS: Any = st.sampled_from(["r1", "r2", "r3", "u1", "", 7, None])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)


@st.composite
def server_frames(draw: st.DrawFn) -> bytes:
    """A frame as a hostile or sloppy server could send it."""
    shape = draw(st.sampled_from(["message", "message", "message", "bytes", "json", "type"]))
    if shape == "bytes":
        return draw(st.binary(max_size=40))
    if shape == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    body: dict[str, Any] = {"type": draw(st.sampled_from(SERVER_TYPES))}
    if shape == "type":
        body["type"] = draw(st.text(max_size=12) | st.integers() | st.none())
    message_id = draw(IDS)
    if message_id is not None:
        body[draw(st.sampled_from(["message_id", "messageId"]))] = message_id
    if draw(st.booleans()):
        body["content"] = draw(st.text(max_size=10) | st.integers())
    if draw(st.booleans()):
        body["metadata"] = draw(JSON_VALUES)
    return json.dumps(body).encode()


OPERATIONS = st.lists(
    st.one_of(
        server_frames().map(lambda payload: ("frame", payload)),
        st.sampled_from([("begin", b""), ("abandon", b""), ("fail", b""), ("cancel", b"")]),
    ),
    max_size=60,
)


@dataclass
class Ledger:
    """What the test saw, kept apart from the tracker's own bookkeeping."""

    begun: list[Stream] = field(default_factory=list)
    ended: Counter[int] = field(default_factory=Counter)
    accepted_chunks: int = 0
    violations_while_open: Counter[int] = field(default_factory=Counter)

    def end(self, stream: Stream | None) -> None:
        if stream is not None:
            self.ended[id(stream)] += 1


def total_chunks(ledger: Ledger) -> int:
    return sum(stream.chunks for stream in ledger.begun)


@SETTINGS
@given(OPERATIONS)
def test_any_sequence_never_raises_and_every_count_adds_up(
    operations: list[tuple[str, bytes]],
) -> None:
    tracker = StreamTracker()
    ledger = Ledger()
    at = 0.0
    for operation, payload in operations:
        at += 0.001
        open_stream = tracker.current
        if operation == "begin":
            if open_stream is None:  # begin on an open stream is misuse (RuntimeError)
                ledger.begun.append(tracker.begin(f"u{len(ledger.begun)}", at))
        elif operation in ("abandon", "fail"):
            if open_stream is not None:  # ending no stream is misuse (RuntimeError)
                ledger.end(getattr(tracker, operation)("timeout", at))
        elif operation == "cancel":
            ledger.end(tracker.cancel(at))
        else:
            before = total_chunks(ledger)
            events = tracker.receive(parse_server_frame(payload), at)
            added = total_chunks(ledger) - before
            violations = [event.kind for event in events if isinstance(event, Violation)]
            for event in events:
                if isinstance(event, StreamFinished):
                    assert event.stream is open_stream
                    ledger.end(event.stream)
            assert added in (0, 1)
            if added:
                # A chunk counts only on the stream open when it came, and only when it was
                # accepted (a chunk before start is still timed: its bytes are real).
                assert open_stream is not None
                assert set(violations) <= {ViolationKind.CHUNK_BEFORE_START}
                ledger.accepted_chunks += 1
            if open_stream is not None:
                ledger.violations_while_open[id(open_stream)] += len(violations)
    ledger.end(tracker.cancel(at + 1.0))

    assert tracker.current is None
    assert all(ledger.ended[id(stream)] == 1 for stream in ledger.begun)
    assert sum(ledger.ended.values()) == len(ledger.begun)
    assert total_chunks(ledger) == ledger.accepted_chunks
    for stream in ledger.begun:
        assert stream.outcome in (Outcome.COMPLETED, Outcome.FAILED, Outcome.CANCELLED)
        assert len(stream.gaps) == max(0, stream.chunks - 1)
        assert (stream.first_chunk_at is None) == (stream.chunks == 0)
        assert stream.violations == ledger.violations_while_open[id(stream)]
        assert stream.end_at is not None and stream.sent_at <= stream.end_at
        if stream.first_chunk_at is not None:
            assert stream.last_chunk_at is not None
            assert stream.sent_at <= stream.first_chunk_at <= stream.last_chunk_at
            assert stream.last_chunk_at <= stream.end_at
        if stream.outcome is Outcome.COMPLETED:
            assert stream.reply_id is not None and stream.stream_ms is not None


NOISE = st.sampled_from(
    [b"not json", b"\xff\xfe", b"[1]", b'{"type": "ai_thinking", "message_id": "x"}',
     b'{"type": "ping", "message_id": "p"}', b'{"type": "pong", "message_id": "p"}',
     b'{"type": "ai_message_chunk"}', b'{"type": "template_created", "message_id": "t"}']
)


@st.composite
def conversations(draw: st.DrawFn) -> list[tuple[int, list[bytes]]]:
    """Well-formed replies with fresh ids, each with (chunks, frames) and noise in between."""
    replies = []
    for number in range(draw(st.integers(0, 8))):
        chunks = draw(st.integers(0, 6))
        reply_id = f"msg_{number}"
        body = [{"type": "ai_message_chunk", "message_id": reply_id, "content": "w "}] * chunks
        frames = [json.dumps(f).encode() for f in [
            {"type": "ai_message_start", "message_id": reply_id}, *body,
            {"type": "ai_message_complete", "messageId": reply_id}]]
        noisy: list[bytes] = []
        for one in frames:
            noisy.extend(draw(st.lists(NOISE, max_size=2)))
            noisy.append(one)
        replies.append((chunks, noisy))
    return replies


@SETTINGS
@given(conversations())
def test_noise_between_frames_never_changes_a_well_formed_reply(
    replies: list[tuple[int, list[bytes]]],
) -> None:
    tracker = StreamTracker()
    at = 0.0
    for number, (chunks, frames) in enumerate(replies):
        stream = tracker.begin(f"u{number}", at)
        for payload in frames:
            at += 0.001
            tracker.receive(parse_server_frame(payload), at)
        assert stream.outcome is Outcome.COMPLETED
        assert stream.reply_id == f"msg_{number}" and stream.chunks == chunks
        assert len(stream.gaps) == max(0, chunks - 1)


@SETTINGS
@given(st.lists(st.sampled_from(["answered", "lost", "late"]), max_size=30))
def test_each_lost_message_costs_exactly_one_failed_stream(fates: list[str]) -> None:
    """``lost``: never answered. ``late``: answered only after the client gave up, during its
    think time. Either way that one stream fails and no other."""
    tracker = StreamTracker()
    at = 0.0
    outcomes = []
    for number, fate in enumerate(fates):
        stream = tracker.begin(f"u{number}", at)
        reply = [json.dumps({"type": kind, "message_id": f"msg_{number}", "content": "x"}).encode()
                 for kind in ("ai_message_start", "ai_message_chunk", "ai_message_complete")]
        if fate == "answered":
            for payload in reply:
                at += 0.01
                tracker.receive(parse_server_frame(payload), at)
        else:
            at += 1.0
            tracker.abandon("timeout", at)
            for payload in reply if fate == "late" else []:  # shows up during think time
                at += 0.01
                assert tracker.receive(parse_server_frame(payload), at) == ()
        outcomes.append(stream.outcome)
    failed = [fate != "answered" for fate in fates]
    assert [outcome is Outcome.FAILED for outcome in outcomes] == failed
