"""Following one connection's conversation: streams, their timings and the tracker's events.

:class:`StreamTracker` follows one conversation's replies (``ai_message_start`` →
``ai_message_chunk``… → ``ai_message_complete``) from frames read at given moments, so every
timing and every protocol violation in a sequence of frames is decided here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from loadtest.protocol.decoding import (
    _NOT_FOR_THE_DECODER,
    _message_of,
    parse_server_frame_reference,
)
from loadtest.protocol.decoding import _WIRE_DECODER as _IMPORTED_WIRE_DECODER
from loadtest.protocol.messages import (
    REPLY_TYPES,
    MessageType,
    ServerMessage,
    Violation,
    ViolationKind,
)

#: Bound by assignment, not by ``from … import``: CPython 3.11 compiles ``name.decode(…)`` on
#: an imported name as a module's attribute (a bound method built per call, ~0.1 µs a chunk
#: in :meth:`StreamTracker.receive_text`), on any other global as a method call.
_WIRE_DECODER: Final = _IMPORTED_WIRE_DECODER


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Bound once for :meth:`StreamTracker.receive_text`, per chunk: on CPython 3.11
#: ``MessageType.AI_MESSAGE_CHUNK`` costs ~80 ns (a lookup through the enum's metaclass), a
#: module global ~10. Per stream such a lookup costs nothing worth a name.
_CHUNK: Final = MessageType.AI_MESSAGE_CHUNK


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
        fewer. Every other frame takes the general path. ``tests/protocol/test_decoding.py``
        holds the two side by side on arbitrary frame sequences.
        """
        try:
            wire = _WIRE_DECODER.decode(payload)
        except _NOT_FOR_THE_DECODER:
            return self.receive(parse_server_frame_reference(payload), at)
        stream = self.current
        if (
            wire.type is _CHUNK
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
