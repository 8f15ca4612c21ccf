"""The FitIQ consultation protocol, Sans-I/O: parse frames, encode messages, track streams.

Nothing here touches a socket or a clock. The transport hands in each frame's payload with the
moment its bytes were read; this module turns it into a :class:`ServerMessage` or a
:class:`Violation`, and :class:`StreamTracker` follows one conversation's replies
(``ai_message_start`` → ``ai_message_chunk``… → ``ai_message_complete``), so every timing
and every protocol violation is decided in one place that tests can drive with plain lists.

The backend's guide spells the id both ``message_id`` (JSON examples) and ``messageId`` (its
Swift client); both are accepted on input, and the client's own spelling is a choice.

Decoding is the per-chunk hot path: well-formed frames are decoded by ``msgspec`` straight into
a typed wire struct (~0.4 µs a chunk against ~2.6 µs for ``json.loads`` plus a frozen dataclass,
``bench/decode_frames.py``); anything it refuses or that needs a judgement (an unknown type, a
missing or non-string id, odd field types, NaN, broken UTF-8) falls back to the reference parser
(:func:`parse_server_frame_reference`), so every verdict is the reference's, exactly
(``tests/test_protocol_decoder.py`` checks the two agree on arbitrary input).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import msgspec

from loadtest.utc import utc_date_time


class MessageType(StrEnum):
    USER_MESSAGE = "user_message"
    AI_MESSAGE_START = "ai_message_start"
    AI_MESSAGE_CHUNK = "ai_message_chunk"
    AI_MESSAGE_COMPLETE = "ai_message_complete"
    TEMPLATE_CREATED = "template_created"
    ERROR = "error"
    PING = "ping"
    PONG = "pong"


SERVER_TYPES: Final = frozenset(
    {
        MessageType.AI_MESSAGE_START,
        MessageType.AI_MESSAGE_CHUNK,
        MessageType.AI_MESSAGE_COMPLETE,
        MessageType.TEMPLATE_CREATED,
        MessageType.ERROR,
        MessageType.PING,
        MessageType.PONG,
    }
)
#: A plain dict: looking a type up per chunk costs less than ``MessageType(raw)``.
_SERVER_TYPE_BY_NAME: Final = {kind.value: kind for kind in SERVER_TYPES}
#: Server frames that are meaningless without an id to correlate them.
TYPES_NEEDING_ID: Final = frozenset(
    {
        MessageType.AI_MESSAGE_START,
        MessageType.AI_MESSAGE_CHUNK,
        MessageType.AI_MESSAGE_COMPLETE,
        MessageType.PONG,
    }
)
ID_KEYS: Final = ("message_id", "messageId")
#: The frames that make up a reply (the stream state machine's subject).
REPLY_TYPES: Final = frozenset(
    {MessageType.AI_MESSAGE_START, MessageType.AI_MESSAGE_CHUNK, MessageType.AI_MESSAGE_COMPLETE}
)


class ViolationKind(StrEnum):
    """Every way a server can break the protocol; counted in ``protocol_violations``."""

    MALFORMED_JSON = "malformed_json"
    BINARY_FRAME = "binary_frame"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_ID = "missing_id"
    CHUNK_BEFORE_START = "chunk_before_start"
    COMPLETE_WITHOUT_START = "complete_without_start"
    DUPLICATE_COMPLETE = "duplicate_complete"
    UNEXPECTED_START = "unexpected_start"
    CROSS_TALK = "cross_talk"
    #: A chunk of a reply that already completed (fresh ids per reply make it unambiguous).
    CHUNK_AFTER_COMPLETE = "chunk_after_complete"
    #: A text frame (or a close reason) that is not UTF-8.
    INVALID_UTF8 = "invalid_utf8"
    #: Found by websockets, which then fails the connection (close 1009 / 1002): the
    #: transport hands them over so they are counted like every other violation.
    OVERSIZED_MESSAGE = "oversized_message"
    FRAMING_ERROR = "framing_error"


class ServerMessage(msgspec.Struct, frozen=True):
    """One well-formed frame from the server.

    A frozen ``msgspec`` struct rather than a frozen dataclass: one is built per chunk, and a
    frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost ~0.6 µs of it.
    """

    type: MessageType
    message_id: str | None
    content: str | None = None
    metadata: dict[str, Any] | None = None
    #: An ``error`` frame's machine-readable reason, when the server gives one (the guide's
    #: frames have none; servers add ``rate_limited``, ``overloaded`` …).
    code: str | None = None


class _WireFrame(msgspec.Struct):
    """A server frame exactly as the common case is spelled on the wire (unknown keys ignored).

    Any other shape (a non-string id or content, a non-object metadata, a type that is not a
    :class:`MessageType`) fails to decode and goes to the reference parser, which decides.
    """

    type: MessageType
    message_id: str | None = None
    messageId: str | None = None  # the Swift client's spelling, as on the wire
    content: str | None = None
    metadata: dict[str, Any] | None = None
    code: str | None = None


_WIRE_DECODER: Final = msgspec.json.Decoder(_WireFrame)
#: What the wire decoder raises on a frame it does not take (the reference parser judges it):
#: DecodeError covers ValidationError (a shape it does not take); UnicodeEncodeError is a str
#: payload with a lone surrogate, which json.loads accepts and msgspec cannot.
_NOT_FOR_THE_DECODER: Final = (msgspec.DecodeError, UnicodeEncodeError)


@dataclass(frozen=True, slots=True)
class Violation:
    """A frame, or a sequence of frames, that breaks the protocol.

    ``detail`` is for humans and never contains more than a short prefix of the payload.
    """

    kind: ViolationKind
    detail: str = ""


def _preview(payload: bytes | str, limit: int = 60) -> str:
    text = payload if isinstance(payload, str) else payload[:limit].decode("utf-8", "replace")
    return text[:limit]


def parse_server_frame(payload: bytes | str) -> ServerMessage | Violation:
    """Turn one text frame's payload into a message, or say why it is not one.

    Args:
        payload: the frame's UTF-8 bytes (or already-decoded text).

    Returns:
        A :class:`ServerMessage`, or a :class:`Violation` of kind ``invalid_utf8``,
        ``malformed_json``, ``unknown_type`` or ``missing_id``. Never raises on bad input: a
        load test must count a misbehaving server, not crash on it. Always the same result as
        :func:`parse_server_frame_reference`, only faster on well-formed frames.
    """
    try:
        wire = _WIRE_DECODER.decode(payload)
    except _NOT_FOR_THE_DECODER:
        return parse_server_frame_reference(payload)
    return _message_of(wire, payload)


def _message_of(wire: _WireFrame, payload: bytes | str) -> ServerMessage | Violation:
    """The message a decoded wire frame is, or the reference's verdict where one is needed."""
    message_type = wire.type
    message_id = wire.message_id
    if message_id is None:
        message_id = wire.messageId
    if not message_id:
        # An empty or absent id: the reference judges (missing_id, or no id needed).
        return parse_server_frame_reference(payload)
    if message_type not in SERVER_TYPES:  # user_message from a server: unknown_type
        return parse_server_frame_reference(payload)
    return ServerMessage(message_type, message_id, wire.content, wire.metadata, wire.code)


def parse_server_frame_reference(payload: bytes | str) -> ServerMessage | Violation:
    """The reference parser: strict UTF-8, ``json.loads``, then every judgement by hand.

    :func:`parse_server_frame` hands it every frame its fast decoder does not take; kept
    public so tests can hold the two side by side. Same arguments and results.
    """
    if not isinstance(payload, str):
        # Decoded here, strictly, rather than by json.loads: that would guess UTF-16 or -32
        # from the first bytes, and a text frame is UTF-8 or broken (RFC 6455 §5.6).
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Violation(ViolationKind.INVALID_UTF8, f"{exc.reason} at byte {exc.start}")
    try:
        data = json.loads(payload)
    except ValueError:
        return Violation(ViolationKind.MALFORMED_JSON, _preview(payload))
    if not isinstance(data, dict):
        return Violation(ViolationKind.MALFORMED_JSON, f"not an object: {_preview(payload)}")
    raw_type = data.get("type")
    message_type = _SERVER_TYPE_BY_NAME.get(raw_type) if isinstance(raw_type, str) else None
    if message_type is None:
        if raw_type == MessageType.USER_MESSAGE.value:
            return Violation(ViolationKind.UNKNOWN_TYPE, f"{raw_type!r} is a client message")
        return Violation(ViolationKind.UNKNOWN_TYPE, repr(raw_type)[:60])
    message_id = data.get("message_id")
    if message_id is None:
        message_id = data.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        message_id = str(message_id)
    if not message_id and message_type in TYPES_NEEDING_ID:
        return Violation(ViolationKind.MISSING_ID, message_type.value)
    content = data.get("content")
    metadata = data.get("metadata")
    code = data.get("code")
    if isinstance(code, int | float) and not isinstance(code, bool):
        code = str(code)  # 429 and "429" are the same reason
    return ServerMessage(
        type=message_type,
        message_id=message_id or None,
        content=content if isinstance(content, str) else None,
        metadata=metadata if isinstance(metadata, dict) else None,
        code=code if isinstance(code, str) else None,
    )


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as the guide's examples write it."""
    if now is not None:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    second, micros = divmod(round(time.time() * 1_000_000), 1_000_000)
    return f"{utc_date_time(second)}.{micros // 1000:03d}Z"


_JSON_ENCODER: Final = msgspec.json.Encoder()


def encode_message(
    message_type: MessageType,
    message_id: str,
    content: str | None = None,
    *,
    id_key: str = "message_id",
    timestamp: str | None = None,
) -> bytes:
    """Serialise a client message (``user_message`` or ``ping``) to a text frame payload.

    Args:
        id_key: ``"message_id"`` (the guide's JSON) or ``"messageId"`` (its Swift client).
    """
    if id_key not in ID_KEYS:
        raise ValueError(f"id_key must be one of {ID_KEYS}, not {id_key!r}")
    body: dict[str, Any] = {"type": message_type.value}
    if content is not None:
        body["content"] = content
    body[id_key] = message_id
    body["timestamp"] = timestamp or utc_timestamp()
    # The bytes json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() gives
    # (tests/test_protocol.py), in a quarter of the time.
    return _JSON_ENCODER.encode(body)


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Stream:
    """One ``user_message`` and the reply it provoked, with the moments that matter.

    All ``*_at`` values are seconds on the transport's monotonic clock, taken when the bytes
    were read from the socket (or, for ``sent_at``, just before they were written).
    """

    user_message_id: str
    sent_at: float
    reply_id: str | None = None
    start_at: float | None = None
    first_chunk_at: float | None = None
    last_chunk_at: float | None = None
    end_at: float | None = None
    chunks: int = 0
    characters: int = 0
    #: Gaps between consecutive chunks, seconds; kept whole so histograms get every gap.
    gaps: list[float] = field(default_factory=list)
    #: Protocol violations seen while this stream was open (its row says so).
    violations: int = 0
    outcome: Outcome | None = None
    error_kind: str | None = None
    error_detail: str | None = None
    close_code: int | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def add_chunk(self, at: float, content: str | None) -> None:
        """Count one chunk of this reply, read at ``at``: the first, or a gap after the last."""
        last = self.last_chunk_at
        if last is None:
            self.first_chunk_at = at
        else:
            self.gaps.append(at - last)
        self.last_chunk_at = at
        self.chunks += 1
        if content:
            self.characters += len(content)

    @property
    def ttfs_ms(self) -> float | None:
        """``user_message`` sent → ``ai_message_start`` received."""
        return None if self.start_at is None else (self.start_at - self.sent_at) * 1000.0

    @property
    def ttfc_ms(self) -> float | None:
        """``user_message`` sent → first ``ai_message_chunk`` received."""
        if self.first_chunk_at is None:
            return None
        return (self.first_chunk_at - self.sent_at) * 1000.0

    @property
    def stream_ms(self) -> float | None:
        """``user_message`` sent → ``ai_message_complete`` received (completed streams only)."""
        if self.outcome is not Outcome.COMPLETED or self.end_at is None:
            return None
        return (self.end_at - self.sent_at) * 1000.0

    @property
    def max_gap_ms(self) -> float | None:
        return max(self.gaps) * 1000.0 if self.gaps else None


# Events the tracker reports besides ordinary chunks (which report nothing, to stay cheap).


@dataclass(frozen=True, slots=True)
class StreamFinished:
    stream: Stream


@dataclass(frozen=True, slots=True)
class PongReceived:
    message_id: str
    at: float


@dataclass(frozen=True, slots=True)
class PingReceived:
    message_id: str | None


@dataclass(frozen=True, slots=True)
class TemplateCreated:
    message_id: str | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    content: str | None
    code: str | None = None

    @property
    def label(self) -> str:
        """The breakdown label of ``error_frames``: the server's code, bounded (a hostile
        server must not grow the breakdown without limit), or ``no_code``."""
        code = self.code
        if not code:
            return "no_code"
        return code if _CODE_LABEL.fullmatch(code) else "other"


_CODE_LABEL: Final = re.compile(r"[A-Za-z0-9_.:-]{1,40}")

TrackerEvent = (
    StreamFinished | PongReceived | PingReceived | TemplateCreated | ErrorFrame | Violation
)
NOTHING: Final[tuple[TrackerEvent, ...]] = ()


#: How many abandoned reply ids a tracker remembers. A reply abandoned mid-stream whose
#: complete never comes would otherwise stay forever; 64 timeouts back is far beyond any
#: server still sending a reply, and the oldest is forgotten first.
MAX_ABANDONED_IDS: Final = 64


class StreamTracker:
    """Follows one connection's conversation, one reply at a time, as the backend serves it.

    The backend gives its reply a fresh id (``msg_456`` answers ``msg_123``), so a reply is
    tied to the user message by order: the first ``ai_message_start`` after a send opens it.
    Frames whose id belongs to another reply are cross-talk, not part of this stream.

    Abandoned replies (a timeout, :meth:`abandon`) are recognised by id or by timing, never by
    a count that outlives them:

    * by id: a reply whose id we saw before giving up is skipped, frame by frame, until its
      ``ai_message_complete`` (then forgotten);
    * by timing: a reply whose id we never saw can only be recognised by *when* it comes.
      The backend serves one reply at a time, so a reply frame with an unknown id that
      arrives while no stream is open (after the timeout, before the next :meth:`begin`)
      belongs to the abandoned message: its id is remembered and all its frames skipped.
      Once the next :meth:`begin` happens that chance expires: a reply starting after our
      next send is taken as that send's reply. A lost message (never answered at all) then
      costs exactly one failed stream, however long the connection lives.

    One tracker belongs to one connection: a reconnect starts a fresh one, because nothing a
    closed connection was owed can arrive on a new one.
    """

    __slots__ = ("_abandoned_ids", "_awaiting_unseen_reply", "_last_finished_reply_id", "current")

    def __init__(self) -> None:
        self.current: Stream | None = None
        self._last_finished_reply_id: str | None = None
        #: Replies we gave up waiting for (timeouts) that the server may still send: their
        #: frames are skipped, never stitched onto the next stream. A dict as an ordered set,
        #: so the cap forgets the oldest.
        self._abandoned_ids: dict[str, None] = {}
        #: True from abandoning a reply whose id we never saw until the next begin(): the
        #: first unknown reply id in that window is the abandoned one.
        self._awaiting_unseen_reply = False

    def begin(self, user_message_id: str, sent_at: float) -> Stream:
        """Record that a ``user_message`` was sent; its reply is the next one to start.

        Raises:
            RuntimeError: a stream is still open. One reply at a time is the protocol; the
                caller must finish, fail or cancel the open one first.
        """
        if self.current is not None:
            raise RuntimeError("a stream is already open on this connection")
        # From here on a new reply id is this message's reply, not the abandoned one's.
        self._awaiting_unseen_reply = False
        self.current = Stream(user_message_id=user_message_id, sent_at=sent_at)
        return self.current

    def receive(self, frame: ServerMessage | Violation, at: float) -> tuple[TrackerEvent, ...]:
        """Advance the conversation by one parsed frame read at ``at``.

        Never raises, whatever the frame: a misbehaving server is counted, not obeyed.

        Returns:
            The events worth reporting, or an empty tuple for an ordinary chunk (the hot
            path allocates nothing). Violations also count on the stream open at the time.
        """
        stream = self.current
        events = self._advance(frame, at)
        if events and stream is not None:
            stream.violations += sum(1 for event in events if isinstance(event, Violation))
        return events

    def receive_text(self, payload: bytes, at: float) -> tuple[TrackerEvent, ...]:
        """``receive(parse_server_frame(payload), at)``, exactly, in one step for a chunk.

        A chunk of the open reply (nearly every frame) updates the stream straight from the
        decoded wire struct: no :class:`ServerMessage`, no dispatch by type, ~0.6 µs a chunk
        fewer. Every other frame takes the general path. ``tests/test_protocol_decoder.py``
        holds the two side by side on arbitrary frame sequences.
        """
        try:
            wire = _WIRE_DECODER.decode(payload)
        except _NOT_FOR_THE_DECODER:
            return self.receive(parse_server_frame_reference(payload), at)
        stream = self.current
        if (
            wire.type is MessageType.AI_MESSAGE_CHUNK
            and stream is not None
            and not self._abandoned_ids
            and not self._awaiting_unseen_reply
        ):
            message_id = wire.message_id
            if message_id is None:
                message_id = wire.messageId
            # The open reply's id (never empty), and not the reply that completed last.
            reply_id = stream.reply_id
            if (
                reply_id is not None
                and message_id == reply_id
                and message_id != self._last_finished_reply_id
            ):
                stream.add_chunk(at, wire.content)
                return NOTHING
        return self.receive(_message_of(wire, payload), at)

    def _advance(self, frame: ServerMessage | Violation, at: float) -> tuple[TrackerEvent, ...]:
        if isinstance(frame, Violation):
            return (frame,)
        kind = frame.type
        if (
            kind in REPLY_TYPES
            and (self._abandoned_ids or self._awaiting_unseen_reply)
            and self._is_abandoned(frame)
        ):
            return NOTHING
        stream = self.current
        if kind is MessageType.AI_MESSAGE_CHUNK:
            return self._chunk(frame, stream, at)
        if kind is MessageType.AI_MESSAGE_START:
            if (
                stream is None
                or stream.start_at is not None
                or stream.first_chunk_at is not None
                or self._is_finished_reply(frame)
            ):
                return (Violation(ViolationKind.UNEXPECTED_START, str(frame.message_id)),)
            stream.start_at = at
            stream.reply_id = frame.message_id
            return NOTHING
        if kind is MessageType.AI_MESSAGE_COMPLETE:
            return self._complete(frame, stream, at)
        if kind is MessageType.PONG:
            return (PongReceived(frame.message_id or "", at),)
        if kind is MessageType.PING:
            return (PingReceived(frame.message_id),)
        if kind is MessageType.TEMPLATE_CREATED:
            return (TemplateCreated(frame.message_id, frame.metadata),)
        # MessageType.ERROR: the reply in flight, if any, will not come.
        error = ErrorFrame(frame.content, frame.code)
        if stream is None:
            return (error,)
        return (error, StreamFinished(self.fail("error_frame", at, detail=frame.content)))

    def _is_finished_reply(self, frame: ServerMessage) -> bool:
        """Whether the frame carries the id of the reply that completed last (ids are fresh
        per reply, so it cannot open or extend another one)."""
        return frame.message_id is not None and frame.message_id == self._last_finished_reply_id

    def _chunk(
        self, frame: ServerMessage, stream: Stream | None, at: float
    ) -> tuple[TrackerEvent, ...]:
        if self._is_finished_reply(frame):
            return (Violation(ViolationKind.CHUNK_AFTER_COMPLETE, str(frame.message_id)),)
        if stream is None:
            return (Violation(ViolationKind.CHUNK_BEFORE_START, "no user_message in flight"),)
        reply_id = stream.reply_id
        events: tuple[TrackerEvent, ...] = NOTHING
        if reply_id is None:
            # No start yet: keep timing the reply (the bytes are real) but say so.
            stream.reply_id = frame.message_id
            events = (Violation(ViolationKind.CHUNK_BEFORE_START, str(frame.message_id)),)
        elif frame.message_id is not None and frame.message_id != reply_id:
            return (Violation(ViolationKind.CROSS_TALK, f"{frame.message_id} during {reply_id}"),)
        stream.add_chunk(at, frame.content)
        return events

    def _complete(
        self, frame: ServerMessage, stream: Stream | None, at: float
    ) -> tuple[TrackerEvent, ...]:
        if self._is_finished_reply(frame):
            return (Violation(ViolationKind.DUPLICATE_COMPLETE, str(frame.message_id)),)
        if stream is None:
            return (Violation(ViolationKind.COMPLETE_WITHOUT_START, str(frame.message_id)),)
        if stream.reply_id is None:
            violation = Violation(ViolationKind.COMPLETE_WITHOUT_START, str(frame.message_id))
            failed = self.fail("complete_without_start", at)
            return (violation, StreamFinished(failed))
        if frame.message_id is not None and frame.message_id != stream.reply_id:
            return (
                Violation(ViolationKind.CROSS_TALK, f"{frame.message_id} during {stream.reply_id}"),
            )
        return (StreamFinished(self._finish(Outcome.COMPLETED, at)),)

    def _is_abandoned(self, frame: ServerMessage) -> bool:
        """Whether a reply frame belongs to a reply we abandoned (and swallow it if so)."""
        message_id = frame.message_id
        if message_id is None:
            return False
        if message_id in self._abandoned_ids:
            if frame.type is MessageType.AI_MESSAGE_COMPLETE:
                del self._abandoned_ids[message_id]
            return True
        if (
            self._awaiting_unseen_reply
            and self.current is None
            and message_id != self._last_finished_reply_id
        ):
            # No stream open: nothing we sent since can own it, so the abandoned one does.
            # One reply at a time: only the first unknown id is claimed this way.
            self._awaiting_unseen_reply = False
            if frame.type is not MessageType.AI_MESSAGE_COMPLETE:
                self._remember_abandoned(message_id)
            return True
        return False

    def _remember_abandoned(self, reply_id: str) -> None:
        ids = self._abandoned_ids
        ids[reply_id] = None
        while len(ids) > MAX_ABANDONED_IDS:
            del ids[next(iter(ids))]

    def abandon(self, error_kind: str, at: float) -> Stream:
        """Fail the open stream (a timeout) knowing the server may still send its reply.

        The rest of that reply is then skipped, so it can neither count as a violation nor
        finish the next stream early (see the class docstring for how it is recognised).

        Raises:
            RuntimeError: no stream is open.
        """
        stream = self.fail(error_kind, at)
        if stream.reply_id is not None:
            self._remember_abandoned(stream.reply_id)
            # _finish made it the last finished reply; it did not complete, so its frames
            # are "abandoned", not "after complete".
            self._last_finished_reply_id = None
        else:
            self._awaiting_unseen_reply = True
        return stream

    def _finish(self, outcome: Outcome, at: float) -> Stream:
        stream = self.current
        assert stream is not None
        stream.outcome = outcome
        stream.end_at = at
        self._last_finished_reply_id = stream.reply_id
        self.current = None
        return stream

    def fail(
        self,
        error_kind: str,
        at: float,
        *,
        detail: str | None = None,
        close_code: int | None = None,
    ) -> Stream:
        """End the open stream as failed (timeout, connection lost, error frame).

        Raises:
            RuntimeError: no stream is open.
        """
        if self.current is None:
            raise RuntimeError("no stream is open")
        self.current.error_kind = error_kind
        self.current.error_detail = detail
        self.current.close_code = close_code
        return self._finish(Outcome.FAILED, at)

    def cancel(self, at: float) -> Stream | None:
        """End the open stream, if any, as cancelled: the run stopped, the server did not fail."""
        if self.current is None:
            return None
        return self._finish(Outcome.CANCELLED, at)
