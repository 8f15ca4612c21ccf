"""The FitIQ consultation protocol, Sans-I/O: parse frames, encode messages, track streams.

Nothing here touches a socket or a clock. The transport hands in each frame's payload with the
moment its bytes were read; this package turns it into a :class:`ServerMessage` or a
:class:`Violation`, and :class:`StreamTracker` follows one conversation's replies
(``ai_message_start`` → ``ai_message_chunk``… → ``ai_message_complete``), so every timing
and every protocol violation is decided in one place that tests can drive with plain lists.

One job per module, each importing only the ones before it:

* :mod:`loadtest.protocol.messages`: the vocabulary and its encoding: message and violation
  kinds, :class:`ServerMessage`, :class:`Violation`, :func:`encode_message`,
  :func:`utc_timestamp` (and both spellings of the id, ``message_id`` and ``messageId``);
* :mod:`loadtest.protocol.decoding`: a server frame's payload into a :class:`ServerMessage`
  or a :class:`Violation`: :func:`parse_server_frame`, the per-chunk hot path (``msgspec``),
  and the reference parser it falls back to, :func:`parse_server_frame_reference`;
* :mod:`loadtest.protocol.tracking`: :class:`Stream`, its :class:`Outcome`, the tracker's
  events and :class:`StreamTracker`.

Every name is re-exported here: import from ``loadtest.protocol``.
"""

from loadtest.protocol.decoding import (
    parse_server_frame,
    parse_server_frame_reference,
)
from loadtest.protocol.messages import (
    ID_KEYS,
    REPLY_TYPES,
    SERVER_TYPES,
    TYPES_NEEDING_ID,
    MessageType,
    ServerMessage,
    Violation,
    ViolationKind,
    encode_message,
    utc_timestamp,
)
from loadtest.protocol.tracking import (
    MAX_ABANDONED_IDS,
    NOTHING,
    ErrorFrame,
    Outcome,
    PingReceived,
    PongReceived,
    Stream,
    StreamFinished,
    StreamTracker,
    TemplateCreated,
    TrackerEvent,
)

__all__ = [
    "ID_KEYS",
    "MAX_ABANDONED_IDS",
    "NOTHING",
    "REPLY_TYPES",
    "SERVER_TYPES",
    "TYPES_NEEDING_ID",
    "ErrorFrame",
    "MessageType",
    "Outcome",
    "PingReceived",
    "PongReceived",
    "ServerMessage",
    "Stream",
    "StreamFinished",
    "StreamTracker",
    "TemplateCreated",
    "TrackerEvent",
    "Violation",
    "ViolationKind",
    "encode_message",
    "parse_server_frame",
    "parse_server_frame_reference",
    "utc_timestamp",
]
