"""The stream tracker, driven with plain lists of frames: no sockets, no clocks."""

from __future__ import annotations

import json

import pytest

from loadtest.protocol import (
    MAX_ABANDONED_IDS,
    ErrorFrame,
    Outcome,
    PingReceived,
    PongReceived,
    StreamFinished,
    StreamTracker,
    TemplateCreated,
    Violation,
    ViolationKind,
    parse_server_frame,
)


def frame(kind: str, message_id: str | None = "r1", id_key: str = "message_id", **extra) -> bytes:
    body = {"type": kind, **extra}
    if message_id is not None:
        body[id_key] = message_id
    return json.dumps(body).encode()


def feed(tracker: StreamTracker, frames: list[tuple[bytes, float]]) -> list:
    events = []
    for payload, at in frames:
        events.extend(tracker.receive(parse_server_frame(payload), at))
    return events


def kinds(events: list) -> list[ViolationKind]:
    return [e.kind for e in events if isinstance(e, Violation)]


class TestStreamTracker:
    def test_a_complete_stream_yields_exact_timings(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", sent_at=10.0)
        events = feed(
            tracker,
            [
                (frame("ai_message_start"), 10.020),
                (frame("ai_message_chunk", content="Eat "), 10.050),
                (frame("ai_message_chunk", content="more "), 10.060),
                (frame("ai_message_chunk", content="greens."), 10.075),
                (frame("ai_message_complete"), 10.080),
            ],
        )
        assert len(events) == 1 and isinstance(events[0], StreamFinished)
        stream = events[0].stream
        assert stream.outcome is Outcome.COMPLETED
        assert stream.ttfs_ms == pytest.approx(20.0)
        assert stream.ttfc_ms == pytest.approx(50.0)
        assert stream.stream_ms == pytest.approx(80.0)
        assert [round(g * 1000, 6) for g in stream.gaps] == [10.0, 15.0]
        assert stream.max_gap_ms == pytest.approx(15.0)
        assert (stream.chunks, stream.characters) == (3, len("Eat more greens."))
        assert tracker.current is None

    def test_ordinary_chunks_report_nothing(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        feed(tracker, [(frame("ai_message_start"), 0.1)])
        chunk = parse_server_frame(frame("ai_message_chunk", content="x"))
        assert tracker.receive(chunk, 0.2) == ()

    def test_chunk_before_start_is_flagged_but_still_timed(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(
            tracker,
            [(frame("ai_message_chunk", content="a"), 0.05), (frame("ai_message_complete"), 0.06)],
        )
        assert kinds(events) == [ViolationKind.CHUNK_BEFORE_START]
        finished = [e for e in events if isinstance(e, StreamFinished)]
        assert finished[0].stream.ttfc_ms == pytest.approx(50.0)
        assert finished[0].stream.ttfs_ms is None

    def test_chunk_with_no_stream_in_flight(self) -> None:
        events = feed(StreamTracker(), [(frame("ai_message_chunk", content="a"), 1.0)])
        assert kinds(events) == [ViolationKind.CHUNK_BEFORE_START]

    def test_complete_without_start_fails_the_stream(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(tracker, [(frame("ai_message_complete"), 0.1)])
        assert kinds(events) == [ViolationKind.COMPLETE_WITHOUT_START]
        finished = next(e for e in events if isinstance(e, StreamFinished))
        assert finished.stream.outcome is Outcome.FAILED
        assert finished.stream.error_kind == "complete_without_start"

    def test_complete_with_nothing_in_flight(self) -> None:
        events = feed(StreamTracker(), [(frame("ai_message_complete", "zz"), 1.0)])
        assert kinds(events) == [ViolationKind.COMPLETE_WITHOUT_START]

    def test_duplicate_complete(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(
            tracker,
            [
                (frame("ai_message_start"), 0.1),
                (frame("ai_message_complete"), 0.2),
                (frame("ai_message_complete"), 0.3),
            ],
        )
        assert kinds(events) == [ViolationKind.DUPLICATE_COMPLETE]

    def test_start_while_a_reply_is_streaming_is_unexpected(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(
            tracker, [(frame("ai_message_start"), 0.1), (frame("ai_message_start", "r2"), 0.2)]
        )
        assert kinds(events) == [ViolationKind.UNEXPECTED_START]
        assert tracker.current is not None and tracker.current.reply_id == "r1"

    def test_cross_talk_is_flagged_and_not_counted(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(
            tracker,
            [
                (frame("ai_message_start", "r1"), 0.1),
                (frame("ai_message_chunk", "r1", content="ok"), 0.2),
                (frame("ai_message_chunk", "r9", content="someone else's"), 0.3),
                (frame("ai_message_complete", "r9"), 0.35),
                (frame("ai_message_complete", "r1"), 0.4),
            ],
        )
        assert kinds(events) == [ViolationKind.CROSS_TALK, ViolationKind.CROSS_TALK]
        stream = next(e for e in events if isinstance(e, StreamFinished)).stream
        assert (stream.chunks, stream.characters) == (1, 2)

    def test_malformed_and_binary_frames_pass_through_as_violations(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = list(tracker.receive(parse_server_frame(b"nope"), 0.1))
        events += tracker.receive(Violation(ViolationKind.BINARY_FRAME, "12 bytes"), 0.2)
        assert kinds(events) == [ViolationKind.MALFORMED_JSON, ViolationKind.BINARY_FRAME]
        assert tracker.current is not None, "a bad frame does not end the stream"

    def test_error_frame_fails_the_stream_in_flight(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(tracker, [(frame("error", None, content="model overloaded"), 0.3)])
        assert isinstance(events[0], ErrorFrame)
        assert events[1].stream.outcome is Outcome.FAILED
        assert events[1].stream.error_kind == "error_frame"
        assert events[1].stream.error_detail == "model overloaded"

    def test_pong_ping_and_template_are_reported(self) -> None:
        events = feed(
            StreamTracker(),
            [
                (frame("pong", "p1"), 5.0),
                (frame("ping", "s1"), 5.1),
                (frame("template_created", "t1", metadata={"type": "meal"}), 5.2),
            ],
        )
        assert events == [
            PongReceived("p1", 5.0),
            PingReceived("s1"),
            TemplateCreated("t1", {"type": "meal"}),
        ]

    def test_one_stream_at_a_time(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        with pytest.raises(RuntimeError):
            tracker.begin("u2", 0.1)

    def test_cancel_marks_an_open_stream_cancelled(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        stream = tracker.cancel(1.0)
        assert stream is not None and stream.outcome is Outcome.CANCELLED
        assert tracker.cancel(2.0) is None

    def test_fail_records_kind_and_close_code(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        stream = tracker.fail("connection_lost", 0.5, close_code=1011)
        assert (stream.outcome, stream.error_kind, stream.close_code) == (
            Outcome.FAILED,
            "connection_lost",
            1011,
        )
        assert stream.stream_ms is None


class TestAbandonedReplies:
    """After a timeout the server may still send the reply: it must not leak into the next."""

    def test_a_late_reply_whose_start_was_seen_is_skipped(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        feed(tracker, [(frame("ai_message_start", "old"), 0.01)])
        tracker.abandon("timeout", 0.1)
        tracker.begin("u2", 0.2)
        events = feed(
            tracker,
            [
                (frame("ai_message_chunk", "old", content="late "), 0.21),
                (frame("ai_message_complete", "old"), 0.22),
                (frame("ai_message_start", "new"), 0.25),
                (frame("ai_message_chunk", "new", content="fresh"), 0.30),
                (frame("ai_message_complete", "new"), 0.31),
            ],
        )
        assert kinds(events) == []
        stream = next(e for e in events if isinstance(e, StreamFinished)).stream
        assert stream.user_message_id == "u2" and stream.reply_id == "new"
        assert stream.ttfc_ms == pytest.approx(100.0) and stream.chunks == 1

    def test_a_late_reply_arriving_during_think_time_is_skipped_whole(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        timed_out = tracker.abandon("timeout", 0.1)
        assert (timed_out.outcome, timed_out.error_kind) == (Outcome.FAILED, "timeout")
        # No stream is open: an unknown reply id can only be the abandoned message's.
        late = feed(
            tracker,
            [
                (frame("ai_message_start", "old"), 0.11),
                (frame("ai_message_chunk", "old", content="late"), 0.12),
            ],
        )
        tracker.begin("u2", 0.2)
        events = late + feed(
            tracker,
            [
                (frame("ai_message_chunk", "old", content="later"), 0.21),
                (frame("ai_message_complete", "old"), 0.23),
                (frame("ai_message_start", "new"), 0.30),
                (frame("ai_message_chunk", "new", content="x"), 0.35),
                (frame("ai_message_complete", "new"), 0.36),
            ],
        )
        assert kinds(events) == []
        stream = next(e for e in events if isinstance(e, StreamFinished)).stream
        assert stream.user_message_id == "u2" and stream.reply_id == "new"
        assert stream.ttfc_ms == pytest.approx(150.0) and stream.chunks == 1

    def test_a_lost_reply_costs_exactly_one_failed_stream(self) -> None:
        """u1 is never answered at all; every later message is answered normally."""
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        outcomes = [tracker.abandon("timeout", 1.0).outcome]
        for n in range(2, 12):
            sent = float(n)
            tracker.begin(f"u{n}", sent)
            events = feed(
                tracker,
                [
                    (frame("ai_message_start", f"r{n}"), sent + 0.1),
                    (frame("ai_message_chunk", f"r{n}", content="ok"), sent + 0.2),
                    (frame("ai_message_complete", f"r{n}"), sent + 0.3),
                ],
            )
            assert kinds(events) == []
            outcomes.append(next(e for e in events if isinstance(e, StreamFinished)).stream.outcome)
        assert outcomes == [Outcome.FAILED] + [Outcome.COMPLETED] * 10

    def test_a_late_reply_starting_after_the_next_send_is_taken_as_its_reply(self) -> None:
        """The documented cost of recognising unseen replies by timing: once we have sent
        again, a reply that starts is this send's reply (one reply at a time)."""
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        tracker.abandon("timeout", 0.1)
        tracker.begin("u2", 0.2)
        events = feed(
            tracker,
            [
                (frame("ai_message_start", "old"), 0.21),
                (frame("ai_message_complete", "old"), 0.23),
            ],
        )
        stream = next(e for e in events if isinstance(e, StreamFinished)).stream
        assert (stream.user_message_id, stream.reply_id) == ("u2", "old")

    def test_only_the_first_unknown_reply_during_think_time_is_the_abandoned_one(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        tracker.abandon("timeout", 0.1)
        events = feed(
            tracker,
            [
                (frame("ai_message_start", "old"), 0.11),
                (frame("ai_message_complete", "old"), 0.12),
                (frame("ai_message_start", "stray"), 0.13),
            ],
        )
        assert kinds(events) == [ViolationKind.UNEXPECTED_START]

    def test_abandoned_ids_are_forgotten_on_complete_and_capped(self) -> None:
        tracker = StreamTracker()
        for n in range(MAX_ABANDONED_IDS + 10):
            tracker.begin(f"u{n}", float(n))
            feed(tracker, [(frame("ai_message_start", f"r{n}"), n + 0.1)])
            tracker.abandon("timeout", n + 0.5)
        assert len(tracker._abandoned_ids) == MAX_ABANDONED_IDS
        last = f"r{MAX_ABANDONED_IDS + 9}"
        feed(tracker, [(frame("ai_message_complete", last), 100.0)])
        assert last not in tracker._abandoned_ids


class TestRepliesAfterTheirEnd:
    """Reply ids are fresh per reply, so frames of a finished reply never touch the next."""

    def test_chunk_after_complete(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        events = feed(
            tracker,
            [
                (frame("ai_message_start", "r1"), 0.1),
                (frame("ai_message_complete", "r1"), 0.2),
                (frame("ai_message_chunk", "r1", content="zombie"), 0.3),
            ],
        )
        assert kinds(events) == [ViolationKind.CHUNK_AFTER_COMPLETE]

    def test_frames_of_the_previous_reply_do_not_open_the_next_stream(self) -> None:
        tracker = StreamTracker()
        tracker.begin("u1", 0.0)
        feed(tracker, [(frame("ai_message_start", "r1"), 0.1),
                       (frame("ai_message_complete", "r1"), 0.2)])
        stream = tracker.begin("u2", 1.0)
        events = feed(
            tracker,
            [
                (frame("ai_message_chunk", "r1"), 1.1),
                (frame("ai_message_complete", "r1"), 1.2),
                (frame("ai_message_start", "r1"), 1.3),
            ],
        )
        assert kinds(events) == [
            ViolationKind.CHUNK_AFTER_COMPLETE,
            ViolationKind.DUPLICATE_COMPLETE,
            ViolationKind.UNEXPECTED_START,
        ]
        assert stream.reply_id is None and stream.chunks == 0 and not stream.finished


def test_violations_count_on_the_stream_they_happened_in() -> None:
    tracker = StreamTracker()
    tracker.begin("u1", 0.0)
    events = feed(
        tracker,
        [
            (frame("ai_message_start"), 0.1),
            (b"garbage", 0.15),
            (frame("ai_message_chunk", "zz", content="other"), 0.2),
            (frame("ai_message_complete"), 0.3),
        ],
    )
    stream = next(e for e in events if isinstance(e, StreamFinished)).stream
    assert stream.violations == 2
