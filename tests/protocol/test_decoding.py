"""The fast frame decoder says exactly what the reference parser says, whatever the server sends.

:func:`parse_server_frame` decodes common frames with ``msgspec`` and hands everything else to
:func:`parse_server_frame_reference` (``json.loads`` and hand-written judgements). These
properties hold the two side by side on well-formed frames in both id spellings, on sloppy ones
(wrong field types, empty ids, duplicate keys, NaN, escapes, odd whitespace) and on raw bytes.

Also: what the parser makes of each kind of frame (:class:`TestParsing`), and the tracker's
one-step ``receive_text``, which decodes a chunk with the fast decoder, against ``receive`` of
the parse (:class:`TestTrackerReceiveText`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loadtest.protocol import (
    MessageType,
    ServerMessage,
    StreamTracker,
    Violation,
    ViolationKind,
    parse_server_frame,
    parse_server_frame_reference,
)

SETTINGS = settings(max_examples=1500, deadline=None)
#: Text with lone surrogates and NULs mixed in: legal in a Python str (a handler may pass one),
#: not encodable as UTF-8, and a decoder must neither crash on them nor judge them differently.
TEXT = st.text(
    st.characters(exclude_categories=()) | st.sampled_from("\ud800\udfff\x00é✓"), max_size=8
)
TYPES = [kind.value for kind in MessageType] + ["", "AI_MESSAGE_CHUNK", "chunk"]
KEYS = ["type", "message_id", "messageId", "content", "metadata", "code", "timestamp", "extra"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
FIELD_VALUES: Any = {
    "type": st.sampled_from(TYPES) | SCALARS,
    "message_id": st.sampled_from(["m1", "msg_456", "", "é✓"]) | SCALARS,
    "messageId": st.sampled_from(["m1", "msg_456", ""]) | SCALARS,
    "content": TEXT | SCALARS,
    "metadata": JSON_VALUES,
    "code": st.sampled_from(["rate_limited", "", "429"]) | SCALARS,
    "timestamp": st.just("2025-01-27T10:00:01Z"),
    "extra": JSON_VALUES,
}
WHITESPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\u00a0", "\x0b"])


def same(payload: bytes | str) -> None:
    fast, reference = parse_server_frame(payload), parse_server_frame_reference(payload)
    # repr, not ==: a NaN in metadata is unequal to itself, and 1 == 1.0 == True would hide a
    # decoder that changed a number's type.
    assert type(fast) is type(reference)
    assert repr(fast) == repr(reference)


@st.composite
def frame_texts(draw: st.DrawFn) -> str:
    """A JSON object written as text, so duplicate keys and raw spacing are possible."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=7))
    if draw(st.booleans()):
        keys = ["type", draw(st.sampled_from(["message_id", "messageId"])), *keys]
    space = draw(WHITESPACE)
    members = []
    for key in keys:
        value = draw(FIELD_VALUES[key])
        members.append(
            f"{json.dumps(key)}{space}:{json.dumps(value, ensure_ascii=draw(st.booleans()))}"
        )
    return draw(WHITESPACE) + "{" + f",{space}".join(members) + "}" + draw(WHITESPACE)


class TestDecoderMatchesReference:
    @SETTINGS
    @given(frame_texts())
    @example('{"type":"ai_message_chunk","content":"Hi ","message_id":"m7"}')
    @example('{"type":"ai_message_chunk","content":"Hi ","messageId":"m7"}')
    @example('{"type":"pong","message_id":"","messageId":"p1"}')
    @example('{"type":"pong","message_id":null,"messageId":"p1"}')
    @example('{"type":"user_message","message_id":"u1"}')
    @example('{"type":"zz","type":"ai_message_start","message_id":"r"}')
    @example('{"type":"ai_message_start","message_id":7}')
    @example('{"type":"error","content":"rate limited"}')
    @example('{"type":"ping","message_id":"\\ud800"}')
    @example('{"type":"ping","message_id":"\ud800"}')
    @example('{"type":"template_created","message_id":"t","metadata":{"x":NaN}}')
    @example('{"type":"template_created","message_id":"t","metadata":{"x":1e400}}')
    def test_on_json_objects_as_text_and_as_bytes(self, text: str) -> None:
        same(text)
        same(text.encode("utf-8", "surrogatepass"))  # lone surrogates: invalid UTF-8 bytes

    @SETTINGS
    @given(st.binary(max_size=60))
    @example(b'\xef\xbb\xbf{"type":"ping"}')
    @example(b'{"type":"ai_message_chunk","message_id":"\xff"}')
    @example(b'{"type":"ai_message_chunk","message_id":"\xed\xa0\x80"}')
    @example(b'{"type":"ping"}\x00')
    @example(b"\xff\xfe{\x00}\x00")
    def test_on_arbitrary_bytes(self, payload: bytes) -> None:
        same(payload)

    @SETTINGS
    @given(JSON_VALUES)
    def test_on_any_json_value(self, value: Any) -> None:
        same(json.dumps(value).encode())


def frame(kind: str, message_id: str | None = "r1", id_key: str = "message_id", **extra) -> bytes:
    body = {"type": kind, **extra}
    if message_id is not None:
        body[id_key] = message_id
    return json.dumps(body).encode()


class TestParsing:
    @pytest.mark.parametrize("id_key", ["message_id", "messageId"])
    def test_both_id_spellings_are_accepted(self, id_key: str) -> None:
        parsed = parse_server_frame(frame("ai_message_chunk", "m7", id_key, content="Hi "))
        assert parsed == ServerMessage(MessageType.AI_MESSAGE_CHUNK, "m7", "Hi ")

    def test_malformed_json_is_a_violation_not_an_exception(self) -> None:
        assert parse_server_frame(b'{"type": "ai_mess').kind is ViolationKind.MALFORMED_JSON

    def test_invalid_utf8_is_its_own_kind(self) -> None:
        # b"\xff\xfe" is a UTF-16 byte-order mark: json.loads would guess UTF-16, but a text
        # frame is UTF-8 or broken.
        assert parse_server_frame(b"\xff\xfe{}").kind is ViolationKind.INVALID_UTF8
        assert parse_server_frame(b'{"content": "\xc3"}').kind is ViolationKind.INVALID_UTF8

    def test_json_that_is_not_an_object_is_malformed(self) -> None:
        assert parse_server_frame(b"[1, 2]").kind is ViolationKind.MALFORMED_JSON

    def test_unknown_type(self) -> None:
        assert parse_server_frame(frame("ai_thinking")).kind is ViolationKind.UNKNOWN_TYPE

    def test_client_type_from_server_is_unknown(self) -> None:
        assert parse_server_frame(frame("user_message")).kind is ViolationKind.UNKNOWN_TYPE

    @pytest.mark.parametrize(
        "kind", ["ai_message_start", "ai_message_chunk", "ai_message_complete"]
    )
    def test_missing_id_on_stream_frames(self, kind: str) -> None:
        assert parse_server_frame(frame(kind, None)).kind is ViolationKind.MISSING_ID

    def test_error_frame_needs_no_id(self) -> None:
        parsed = parse_server_frame(frame("error", None, content="rate limited"))
        assert parsed == ServerMessage(MessageType.ERROR, None, "rate limited")


class TestDecoderResults:
    """The common frames, decoded by the fast path, are the messages the guide describes."""

    @pytest.mark.parametrize("id_key", ["message_id", "messageId"])
    def test_both_id_spellings(self, id_key: str) -> None:
        payload = json.dumps(
            {
                "type": "ai_message_chunk",
                "content": "Hi ",
                id_key: "m7",
                "timestamp": "2025-01-27T10:00:01Z",
            }
        ).encode()
        assert parse_server_frame(payload) == ServerMessage(
            MessageType.AI_MESSAGE_CHUNK, "m7", "Hi "
        )

    def test_unknown_type_is_still_reported(self) -> None:
        parsed = parse_server_frame(b'{"type":"typing","message_id":"m1"}')
        assert parsed == Violation(ViolationKind.UNKNOWN_TYPE, "'typing'")

    def test_template_metadata_survives(self) -> None:
        parsed = parse_server_frame(
            b'{"type":"template_created","message_id":"t1","metadata":{"template_id":"x"}}'
        )
        assert isinstance(parsed, ServerMessage)
        assert parsed.metadata == {"template_id": "x"}


REPLY_IDS = st.sampled_from(["r1", "r2", "", None])


@st.composite
def reply_frames(draw: st.DrawFn) -> bytes:
    """Frames of replies as servers send them (mostly chunks), with sloppy ones among them."""
    kind = draw(st.sampled_from(["ai_message_chunk"] * 4 + [k.value for k in MessageType]))
    body: dict[str, Any] = {"type": kind}
    reply_id = draw(REPLY_IDS)
    if reply_id is not None:
        body[draw(st.sampled_from(["message_id", "messageId"]))] = reply_id
    if draw(st.booleans()):
        body["content"] = draw(st.sampled_from(["Hi ", "", "é✓ "]))
    return json.dumps(body).encode()


OPERATIONS = st.lists(
    st.one_of(
        reply_frames().map(lambda payload: ("frame", payload)),
        frame_texts().map(lambda text: ("frame", text.encode("utf-8", "surrogatepass"))),
        st.binary(max_size=20).map(lambda payload: ("frame", payload)),
        st.sampled_from([("begin", b""), ("abandon", b""), ("fail", b""), ("cancel", b"")]),
    ),
    max_size=30,
)


def drive(tracker: StreamTracker, operations: list[tuple[str, bytes]], *, fused: bool) -> list:
    seen: list[Any] = []
    for step, (operation, payload) in enumerate(operations):
        at = float(step)
        if operation == "frame":
            if fused:
                events = tracker.receive_text(payload, at)
            else:
                events = tracker.receive(parse_server_frame(payload), at)
            seen.append(repr(events))
        elif operation == "begin" and tracker.current is None:
            tracker.begin(f"u{step}", at)
        elif operation == "abandon" and tracker.current is not None:
            seen.append(repr(tracker.abandon("timeout", at)))
        elif operation == "fail" and tracker.current is not None:
            seen.append(repr(tracker.fail("connection_lost", at)))
        elif operation == "cancel":
            seen.append(repr(tracker.cancel(at)))
        seen.append(repr(tracker.current))
    return seen


class TestTrackerReceiveText:
    """``receive_text`` (decode and track a chunk in one step) is ``receive`` of the parse."""

    @SETTINGS
    @given(OPERATIONS)
    @example(
        [
            ("begin", b""),
            ("frame", b'{"type":"ai_message_start","message_id":"r1"}'),
            ("frame", b'{"type":"ai_message_chunk","message_id":"r1","content":"Hi "}'),
            ("frame", b'{"type":"ai_message_chunk","messageId":"r1","content":"there"}'),
            ("frame", b'{"type":"ai_message_chunk","message_id":"r2","content":"x"}'),
            ("frame", b'{"type":"ai_message_chunk","content":"no id"}'),
            ("frame", b'{"type":"ai_message_complete","message_id":"r1"}'),
            ("frame", b'{"type":"ai_message_chunk","message_id":"r1","content":"late"}'),
        ]
    )
    @example([("begin", b""), ("frame", b'{"type":"ai_message_chunk","content":"no id"}')])
    @example(
        [
            ("begin", b""),
            ("frame", b'{"type":"ai_message_start","message_id":"r1"}'),
            ("frame", b'{"type":"ai_message_complete","message_id":"r1"}'),
            ("begin", b""),
            ("frame", b'{"type":"ai_message_chunk","content":"no id, no start"}'),
        ]
    )
    @example(
        [
            ("begin", b""),
            ("frame", b'{"type":"ai_message_start","message_id":"r1"}'),
            ("abandon", b""),
            ("begin", b""),
            ("frame", b'{"type":"ai_message_chunk","message_id":"r1"}'),
        ]
    )
    def test_on_any_sequence_of_frames_and_stream_ends(
        self, operations: list[tuple[str, bytes]]
    ) -> None:
        reference = drive(StreamTracker(), operations, fused=False)
        assert drive(StreamTracker(), operations, fused=True) == reference
