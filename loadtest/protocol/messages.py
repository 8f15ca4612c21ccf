"""The protocol's vocabulary and its encoding: message and violation kinds, messages, timestamps.

The backend's guide spells the id both ``message_id`` (JSON examples) and ``messageId`` (its
Swift client); both are accepted on input (:mod:`loadtest.protocol.decoding`), and the
client's own spelling is a choice (:func:`encode_message`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Violation:
    """A frame, or a sequence of frames, that breaks the protocol.

    ``detail`` is for humans and never contains more than a short prefix of the payload.
    """

    kind: ViolationKind
    detail: str = ""


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
    # (tests/protocol/test_messages.py), in a quarter of the time.
    return _JSON_ENCODER.encode(body)
