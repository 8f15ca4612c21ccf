"""Decoding a server frame's payload into a :class:`ServerMessage` or a :class:`Violation`.

Decoding is the per-chunk hot path: well-formed frames are decoded by ``msgspec`` straight into
a typed wire struct (~0.4 µs a chunk against ~2.6 µs for ``json.loads`` plus a frozen dataclass,
``bench/decode_frames.py``); anything it refuses or that needs a judgement (an unknown type, a
missing or non-string id, odd field types, NaN, broken UTF-8) falls back to the reference parser
(:func:`parse_server_frame_reference`), so every verdict is the reference's, exactly
(``tests/protocol/test_decoding.py`` checks the two agree on arbitrary input).
"""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec

from loadtest.protocol.messages import _SERVER_TYPE_BY_NAME as _IMPORTED_SERVER_TYPE_BY_NAME
from loadtest.protocol.messages import (
    SERVER_TYPES,
    TYPES_NEEDING_ID,
    MessageType,
    ServerMessage,
    Violation,
    ViolationKind,
)

#: Bound by assignment, not by ``from … import``: CPython 3.11 compiles ``name.get(…)`` on an
#: imported name as a module's attribute (a bound method built per call), on any other global
#: as a method call (see :data:`loadtest.protocol.tracking._WIRE_DECODER`).
_SERVER_TYPE_BY_NAME: Final = _IMPORTED_SERVER_TYPE_BY_NAME


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
