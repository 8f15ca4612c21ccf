"""Hostile servers: whatever they send, it is counted as its own kind, and nothing dies.

Driven through the transport and the protocol core as a session drives them (parse, track,
count), against :mod:`tests.hostile_server`, which is not our target. Each misbehaving script
misbehaves on the first message only, so a second message shows the connection still works.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from time import perf_counter

import gevent
import gevent.event
import pytest

from loadtest import receive_stamps
from loadtest.errors import HandshakeError
from loadtest.protocol import (
    MessageType,
    Outcome,
    Stream,
    StreamFinished,
    StreamTracker,
    TrackerEvent,
    Violation,
    ViolationKind,
    encode_message,
    parse_server_frame,
)
from loadtest.session import ConsultationSession, Endpoints, SessionConfig
from loadtest.transport import ConnectOptions, WebSocketConnection
from tests.hostile_server import FLOOD_CHUNKS, OVERSIZED_BYTES, HostileServer, RawServer

OPTIONS = ConnectOptions(open_timeout_s=2, close_timeout_s=0.5,
                         max_message_bytes=OVERSIZED_BYTES // 4)
WAIT_S = 5.0


class Conversation:
    """A FrameHandler doing what a session does with frames, minus the session."""

    def __init__(self) -> None:
        self.tracker = StreamTracker()
        self.violations: Counter[ViolationKind] = Counter()
        self.stream_ended = gevent.event.Event()
        self.closed = gevent.event.Event()
        self.close_code: int | None = None

    def on_text(self, payload: bytes, at: float) -> None:
        self._handle(self.tracker.receive(parse_server_frame(payload), at))

    def on_binary(self, payload: bytes, at: float) -> None:
        violation = Violation(ViolationKind.BINARY_FRAME, f"{len(payload)} bytes")
        self._handle(self.tracker.receive(violation, at))

    def on_violation(self, violation: Violation, at: float) -> None:
        self._handle(self.tracker.receive(violation, at))

    def on_close(self, code: int, reason: str, at: float) -> None:
        self.close_code = code
        if self.tracker.current is not None:
            self.tracker.fail("connection_lost", at, close_code=code)
            self.stream_ended.set()
        self.closed.set()

    def _handle(self, events: tuple[TrackerEvent, ...]) -> None:
        for event in events:
            if isinstance(event, Violation):
                self.violations[event.kind] += 1
            elif isinstance(event, StreamFinished):
                self.stream_ended.set()

    def send(self, connection: WebSocketConnection, timeout_s: float = WAIT_S) -> Stream:
        """Send one user_message and wait for its stream to end (a timeout abandons it)."""
        self.stream_ended.clear()
        stream = self.tracker.begin(uuid.uuid4().hex, perf_counter())
        if not connection.is_open:
            self.tracker.fail("send_failed", perf_counter())
            return stream
        stream.sent_at = connection.send_text(
            encode_message(MessageType.USER_MESSAGE, stream.user_message_id, "Hi"))
        if not self.stream_ended.wait(timeout_s) and not stream.finished:
            self.tracker.abandon("timeout", perf_counter())
        return stream


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


def converse(server: HostileServer, script: str) -> tuple[Conversation, list[Stream]]:
    """Two messages on one connection: the misbehaving reply, then a well-formed one."""
    conversation = Conversation()
    connection = WebSocketConnection.open(server.ws_url(script), conversation, OPTIONS)
    try:
        streams = [conversation.send(connection), conversation.send(connection)]
    finally:
        connection.close()
    return conversation, streams


@pytest.mark.parametrize(
    ("script", "kind", "count"),
    [
        ("non_json", ViolationKind.MALFORMED_JSON, 1),
        ("binary", ViolationKind.BINARY_FRAME, 1),
        ("unknown_type", ViolationKind.UNKNOWN_TYPE, 1),
        ("wrong_id", ViolationKind.CROSS_TALK, 1),
        ("missing_id", ViolationKind.MISSING_ID, 1),
        ("invalid_utf8", ViolationKind.INVALID_UTF8, 1),
        # After its complete no stream is open, so these count on none (or on the next).
        ("chunks_after_complete", ViolationKind.CHUNK_AFTER_COMPLETE, 3),
    ],
)
def test_a_bad_frame_is_counted_by_kind_and_the_conversation_goes_on(
    server: HostileServer, script: str, kind: ViolationKind, count: int
) -> None:
    conversation, streams = converse(server, script)
    assert conversation.violations == Counter({kind: count})
    assert [stream.outcome for stream in streams] == [Outcome.COMPLETED] * 2
    if kind is not ViolationKind.CHUNK_AFTER_COMPLETE:
        assert streams[0].violations == count and streams[1].violations == 0


def test_stray_frames_never_count_as_chunks(server: HostileServer) -> None:
    for script in ("wrong_id", "missing_id"):
        _, streams = converse(server, script)
        assert streams[0].chunks == 1, script  # only the chunk with the reply's own id


def test_the_camel_case_id_spelling_is_no_violation(server: HostileServer) -> None:
    conversation, streams = converse(server, "camel_case")
    assert conversation.violations == Counter()
    assert [stream.outcome for stream in streams] == [Outcome.COMPLETED] * 2


def test_a_flood_of_chunks_is_counted_chunk_by_chunk(server: HostileServer) -> None:
    conversation, streams = converse(server, "flood")
    assert streams[0].outcome is Outcome.COMPLETED and conversation.violations == Counter()
    assert streams[0].chunks == FLOOD_CHUNKS and len(streams[0].gaps) == FLOOD_CHUNKS - 1


class StampWatch(Conversation):
    """A conversation that also notes each text frame's stamp beside the moment it is handled."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[float, float]] = []

    def on_text(self, payload: bytes, at: float) -> None:
        self.stamps.append((at, perf_counter()))
        super().on_text(payload, at)


@pytest.mark.skipif(receive_stamps.SO_TIMESTAMPNS is None, reason="Linux receive stamps")
def test_a_flood_read_by_the_kernel_clock_is_stamped_in_order_and_never_after_its_read(
    server: HostileServer, kernel_stamping_on: None
) -> None:
    # many frames per read on the stamped hub path: they share their read's arrival stamp
    conversation = StampWatch()
    connection = WebSocketConnection.open(server.ws_url("flood"), conversation, OPTIONS)
    try:
        assert connection.receive_clock == "kernel"
        stream = conversation.send(connection)
    finally:
        connection.close()
    assert stream.outcome is Outcome.COMPLETED and stream.chunks == FLOOD_CHUNKS
    stamps = [at for at, _ in conversation.stamps]
    assert stamps == sorted(stamps)  # arrival order kept: no negative gap
    assert all(at <= handled for at, handled in conversation.stamps)
    assert stream.sent_at < stamps[0]
    assert min(stream.gaps) >= 0 and len(set(stamps)) < len(stamps)  # frames shared reads


@pytest.mark.parametrize(
    ("script", "kind", "code"),
    [("oversized", ViolationKind.OVERSIZED_MESSAGE, 1009),
     ("bad_framing", ViolationKind.FRAMING_ERROR, 1002),
     ("invalid_close_reason", ViolationKind.INVALID_UTF8, 1007)],
)
def test_frames_websockets_refuses_are_a_violation_and_a_close_code(
    server: HostileServer, script: str, kind: ViolationKind, code: int
) -> None:
    conversation, streams = converse(server, script)
    assert conversation.violations == Counter({kind: 1})
    assert conversation.close_code == code
    first, second = streams
    assert (first.outcome, first.error_kind, first.close_code) == (
        Outcome.FAILED, "connection_lost", code)
    assert (second.outcome, second.error_kind) == (Outcome.FAILED, "send_failed")


def test_a_server_that_never_replies_costs_one_timeout(server: HostileServer) -> None:
    conversation = Conversation()
    connection = WebSocketConnection.open(server.ws_url("mute"), conversation, OPTIONS)
    try:
        stream = conversation.send(connection, timeout_s=0.3)
        assert (stream.outcome, stream.error_kind) == (Outcome.FAILED, "timeout")
        assert connection.is_open
    finally:
        connection.close()


def test_a_server_that_never_answers_the_handshake_is_a_bounded_timeout() -> None:
    with RawServer("silent") as raw:
        started = perf_counter()
        with pytest.raises(HandshakeError) as caught:
            WebSocketConnection.open(raw.ws_url(), Conversation(),
                                     ConnectOptions(open_timeout_s=0.3))
        assert caught.value.kind == "timeout"
        assert perf_counter() - started < 1.0
        assert raw.requests == 1  # TCP was accepted and the request read: only the answer lacks


def test_close_returns_in_time_against_a_server_that_ignores_it() -> None:
    with RawServer("no_close") as raw:
        conversation = Conversation()
        connection = WebSocketConnection.open(raw.ws_url(), conversation, OPTIONS)
        started = perf_counter()
        connection.close(timeout_s=0.3)
        assert perf_counter() - started < 1.0
        assert conversation.closed.is_set() and conversation.close_code == 1006
        assert not connection.is_open


# -- through a whole session (its stable public API) --------------------------------------


class Observed:
    """A SessionObserver that keeps streams, violations and close codes."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.violations: Counter[ViolationKind] = Counter()
        self.disconnects: list[int] = []

    def stream_finished(self, stream: Stream) -> None:
        self.streams.append(stream)

    def violation(self, kind: ViolationKind) -> None:
        self.violations[kind] += 1

    def disconnected(self, close_code: int) -> None:
        self.disconnects.append(close_code)

    def __getattr__(self, name: str) -> Callable[..., None]:  # everything else: ignored
        return lambda *args, **kwargs: None


def session_reply(server: HostileServer, script: str, **overrides: object
                  ) -> tuple[Observed, Stream]:
    settings: dict[str, object] = dict(
        endpoints=Endpoints.from_base_url(server.url(script)), consultation_id="c1",
        stream_timeout_s=WAIT_S, heartbeat_interval_s=None, connect=OPTIONS)
    settings.update(overrides)
    observed = Observed()
    session = ConsultationSession(SessionConfig(**settings), observed)  # type: ignore[arg-type]
    session.start()
    try:
        stream = session.send_user_message("Hi")
    finally:
        session.close()
    return observed, stream


def test_a_session_times_out_a_server_that_never_replies(server: HostileServer) -> None:
    observed, stream = session_reply(server, "mute", stream_timeout_s=0.3)
    assert (stream.outcome, stream.error_kind) == (Outcome.FAILED, "timeout")
    assert observed.streams == [stream]


def test_a_session_takes_a_flood_of_chunks(server: HostileServer) -> None:
    observed, stream = session_reply(server, "flood")
    assert stream.outcome is Outcome.COMPLETED and stream.chunks == FLOOD_CHUNKS
    assert observed.violations == Counter()


def test_a_session_survives_an_oversized_message_as_close_1009(server: HostileServer) -> None:
    observed, stream = session_reply(server, "oversized")
    assert (stream.outcome, stream.close_code) == (Outcome.FAILED, 1009)
    assert 1009 in observed.disconnects


def test_a_session_counts_an_oversized_message_as_a_violation(server: HostileServer) -> None:
    observed, _ = session_reply(server, "oversized")
    assert observed.violations == Counter({ViolationKind.OVERSIZED_MESSAGE: 1})
