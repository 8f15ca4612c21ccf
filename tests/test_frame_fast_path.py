"""The frame fast path plus websockets is websockets alone, byte for byte, event for event.

Two client protocols, both OPEN, receive the same byte stream split at the same arbitrary
points: one directly (the reference), one through :class:`FrameFastPath`. After every piece,
and after the end of the stream, they must have produced the same frames (a payload taken by
the fast path counts as the ``Frame(TEXT, payload)`` websockets would have made), the same
writes (pongs, close answers), the same state, close frames and parser error.

The streams are built from the frames a hostile server could send: common text frames (7- and
16-bit lengths, any bytes as payload), binary and fragmented messages, pings, pongs, closes
(valid or not), masked frames, reserved bits, bad opcodes, lengths over the limit, 64-bit
lengths, truncations and raw noise.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from loadtest.frame_fast_path import FrameFastPath, can_send_directly, client_text_frame

MAX_SIZE = 300  # small, so "over the limit" is cheap to generate
SETTINGS = settings(max_examples=700, deadline=None)


def header(first: int, length: int, *, masked: bool = False, length_form: str = "") -> bytes:
    """A frame header; ``length_form`` forces a (non-minimal) 16- or 64-bit length."""
    mask_bit = 0x80 if masked else 0
    if length_form == "64" or length >= 65536:
        return struct.pack("!BBQ", first, mask_bit | 127, length)
    if length_form == "16" or length >= 126:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    return bytes((first, mask_bit | length))


PAYLOADS = st.binary(max_size=140) | st.sampled_from(
    [b'{"type":"ai_message_chunk","content":"Hi ","message_id":"m1"}', "é✓".encode(), b"\xff"]
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text"] * 6
            + ["binary", "fragmented", "ping", "pong", "close", "masked", "rsv", "opcode"]
            + ["too_long", "long_64", "control_too_long", "noise"]
        )
    )
    payload = draw(PAYLOADS)
    if kind == "text":
        form = draw(st.sampled_from(["", "", "", "16"]))
        return header(0x81, len(payload), length_form=form) + payload
    if kind == "binary":
        return header(0x82, len(payload)) + payload
    if kind == "fragmented":
        first = draw(st.sampled_from([0x01, 0x02]))
        parts = draw(st.lists(PAYLOADS, min_size=1, max_size=3))
        out = header(first, len(payload)) + payload
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            out += header(0x80 if last else 0x00, len(part)) + part
        return out
    if kind in ("ping", "pong"):
        body = payload[:125]
        return header(0x89 if kind == "ping" else 0x8A, len(body)) + body
    if kind == "close":
        code = draw(st.sampled_from([1000, 1001, 1011, 4001, 999, 1005, 5000]))
        reason = draw(st.sampled_from([b"", b"bye", b"\xff\xfe"]))
        body = draw(st.sampled_from([struct.pack("!H", code) + reason, b"", b"\x03"]))
        return header(0x88, len(body)) + body
    if kind == "masked":
        return header(0x81, len(payload), masked=True) + b"\x00\x00\x00\x00" + payload
    if kind == "rsv":
        return header(0x81 | draw(st.sampled_from([0x40, 0x20, 0x10])), len(payload)) + payload
    if kind == "opcode":
        return header(0x80 | draw(st.sampled_from([0x3, 0x7, 0xB, 0xF])), len(payload)) + payload
    if kind == "too_long":
        return header(0x81, MAX_SIZE + 1 + len(payload)) + payload
    if kind == "long_64":
        return header(0x81, len(payload), length_form="64") + payload
    if kind == "control_too_long":
        body = payload.ljust(126, b"x")[:126]
        return header(0x89, len(body)) + body
    return draw(st.binary(min_size=1, max_size=12))


@st.composite
def split_streams(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    stream = b"".join(draw(st.lists(frames(), max_size=8)))
    if draw(st.booleans()) and stream:
        stream = stream[: draw(st.integers(0, len(stream)))]  # cut mid-frame
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    bounds = [0, *cuts, len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    return pieces, draw(st.booleans())


def open_protocol() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=MAX_SIZE)


def normalise(item: Any) -> tuple[Any, ...]:
    if isinstance(item, bytes):  # taken by the fast path
        return (Opcode.TEXT, item, True, False, False, False)
    assert isinstance(item, Frame)
    return (item.opcode, bytes(item.data), item.fin, item.rsv1, item.rsv2, item.rsv3)


def observe(protocol: ClientProtocol, items: list[Any]) -> tuple[Any, ...]:
    exc = protocol.parser_exc
    return (
        [normalise(item) for item in items],
        protocol.data_to_send(),
        protocol.state,
        protocol.close_rcvd,
        protocol.close_sent,
        None if exc is None else (type(exc), str(exc)),
    )


def run(
    pieces: list[bytes], eof: bool, *, fast: bool, as_the_hub_reads: bool = False
) -> list[tuple[Any, ...]]:
    """Feed the pieces to websockets alone, or through the fast path: with
    ``as_the_hub_reads``, as the transport's hub callback does (a read buffer larger than the
    read, :meth:`FrameFastPath.whole_text` asked first), else through ``receive_data`` alone
    (the reader greenlet, the bytes that came with the handshake)."""
    protocol = open_protocol()
    path = FrameFastPath(protocol) if fast else None
    seen = []
    for piece in pieces:
        if protocol.reader.eof:
            break
        # The transport hands the fast path a view of a buffer it reuses: do the same, and
        # scribble over it afterwards, so a payload kept by reference would show.
        buffer = bytearray(piece) + b"\x81\x05stale"  # a reused buffer: bytes past the read
        view = memoryview(buffer)
        size = len(piece)
        if path is not None:
            payload = path.whole_text(view, size) if as_the_hub_reads else None
            items = [payload] if payload is not None else path.receive_data(view[:size])
        else:
            protocol.receive_data(bytes(buffer[:size]))
            items = protocol.events_received()
        buffer[:] = b"\xaa" * len(buffer)
        seen.append(observe(protocol, items))
    if eof and not protocol.reader.eof:
        if path is not None:
            items = path.receive_eof()
        else:
            protocol.receive_eof()
            items = protocol.events_received()
        seen.append(observe(protocol, items))
    return seen


def same_as_websockets(pieces: list[bytes], eof: bool) -> None:
    # Client frames are masked with random keys: make them deterministic for the comparison.
    with mock.patch("websockets.frames.secrets.token_bytes", lambda n: b"\x00" * n):
        reference = run(pieces, eof, fast=False)
        fast = run(pieces, eof, fast=True)
        as_the_hub_reads = run(pieces, eof, fast=True, as_the_hub_reads=True)
    assert fast == reference
    assert as_the_hub_reads == reference


def text(payload: bytes) -> bytes:
    return header(0x81, len(payload)) + payload


CHUNK = b'{"type":"ai_message_chunk","content":"Hi ","message_id":"m1"}'


class TestSameAsWebsocketsAlone:
    @SETTINGS
    @given(split_streams())
    @example(([text(CHUNK) * 3], True))
    @example(([text(CHUNK)[:1], text(CHUNK)[1:3], text(CHUNK)[3:]], False))
    @example(([header(0x81, 200), b"x" * 200 + text(CHUNK)], False))
    @example(([header(0x01, 2) + b"ab" + text(CHUNK)], True))  # text inside a fragmented one
    @example(([text(CHUNK) + header(0x88, 2) + b"\x03\xe8" + text(CHUNK)], True))
    @example(([text(CHUNK) + header(0x81, 1000)], False))  # over the limit: fails at once
    @example(([text(CHUNK) + bytes((0x81, 0x85))], False))  # masked: fails at once
    @example(([text(CHUNK)[:-4]], True))  # cut mid-payload, then EOF
    def test_any_stream_split_anywhere(self, case: tuple[list[bytes], bool]) -> None:
        same_as_websockets(*case)


@st.composite
def one_frame_per_read(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    """The usual read: each piece is exactly one frame, as a chat server's chunks arrive."""
    return draw(st.lists(frames(), max_size=8)), draw(st.booleans())


class TestOneWholeFramePerRead:
    """The read that is exactly one frame has a shortcut of its own; it too is websockets."""

    @SETTINGS
    @given(one_frame_per_read())
    @example(([text(CHUNK), text(CHUNK)], False))
    @example(([header(0x01, 2) + b"ab", text(CHUNK), header(0x80, 1) + b"c"], False))
    @example(([text(CHUNK), header(0x88, 2) + b"\x03\xe8", text(CHUNK)], True))
    @example(([bytes((0x81, 0x85)) + b"\x00" * 9], False))  # masked, same size as unmasked
    def test_any_sequence_of_whole_frames(self, case: tuple[list[bytes], bool]) -> None:
        same_as_websockets(*case)

    @pytest.mark.parametrize("max_size", [0, 10, 61, 62, 200])
    def test_a_frame_over_a_small_limit_fails_as_websockets_fails_it(self, max_size: int) -> None:
        def run_with_limit(fast: bool) -> tuple[Any, ...]:
            protocol = ClientProtocol(
                parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=max_size
            )
            if fast:
                items = FrameFastPath(protocol).receive_data(memoryview(bytearray(text(CHUNK))))
            else:
                protocol.receive_data(text(CHUNK))
                items = protocol.events_received()
            return observe(protocol, items)

        with mock.patch("websockets.frames.secrets.token_bytes", lambda n: b"\x00" * n):
            assert run_with_limit(True) == run_with_limit(False)


class TestAfterWeSentAClose:
    """Once we have begun closing, frames are websockets' (it decides what CLOSING accepts)."""

    @SETTINGS
    @given(st.lists(frames(), max_size=6), st.integers(0, 6))
    @example([text(CHUNK), text(CHUNK), header(0x88, 2) + b"\x03\xe8"], 1)
    def test_frames_after_our_close_are_handled_as_websockets_handles_them(
        self, pieces: list[bytes], close_after: int
    ) -> None:
        def run_closing(fast: bool) -> list[tuple[Any, ...]]:
            protocol = open_protocol()
            path = FrameFastPath(protocol)
            seen = []
            for index, piece in enumerate(pieces):
                if index == close_after and protocol.state is State.OPEN:
                    protocol.send_close(1000)
                if protocol.reader.eof:
                    break
                if fast:
                    items = path.receive_data(memoryview(bytearray(piece)))
                else:
                    protocol.receive_data(piece)
                    items = protocol.events_received()
                seen.append(observe(protocol, items))
            return seen

        with mock.patch("websockets.frames.secrets.token_bytes", lambda n: b"\x00" * n):
            assert run_closing(True) == run_closing(False)


class TestWhatTheFastPathTakes:
    def test_common_frames_become_payloads(self) -> None:
        path = FrameFastPath(open_protocol())
        assert path.receive_data(text(CHUNK) + text(b"{}")) == [CHUNK, b"{}"]

    def test_a_ping_in_between_goes_to_websockets_and_is_answered(self) -> None:
        protocol = open_protocol()
        items = FrameFastPath(protocol).receive_data(text(b"a") + header(0x89, 1) + b"p")
        assert items[0] == b"a"
        assert isinstance(items[1], Frame) and items[1].opcode is Opcode.PING
        assert protocol.data_to_send()  # the pong

    def test_a_split_frame_waits_for_its_end(self) -> None:
        path = FrameFastPath(open_protocol())
        frame = text(CHUNK)
        assert path.receive_data(frame[:5]) == []
        assert path.receive_data(frame[5:]) == [CHUNK]

    def test_a_large_message_read_piece_by_piece_arrives_whole_as_bytes(self) -> None:
        # while its frame is incomplete nothing is copied out of it; once whole, the payload
        # is bytes (the transport dispatches a fast-path payload by that type), as are the
        # common frames read after it in the same read
        protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=2**20)
        path = FrameFastPath(protocol)
        big = b"x" * 200_000
        stream = text(big) + text(CHUNK)
        pieces = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]
        got = [item for piece in pieces for item in path.receive_data(memoryview(piece))]
        assert got == [big, CHUNK]
        assert all(type(item) is bytes for item in got)


class TestClientTextFrames:
    """Frames we send ourselves are the bytes websockets would have sent."""

    @settings(max_examples=200, deadline=None)
    @given(
        st.binary(max_size=300)
        | st.sampled_from([b"x" * 125, b"x" * 126, b"x" * 65535, b"x" * 65536]),
        st.binary(min_size=4, max_size=4),
    )
    def test_same_bytes_as_websockets_with_the_same_key(self, payload: bytes, key: bytes) -> None:
        with mock.patch("websockets.frames.secrets.token_bytes", lambda n: key):
            expected = Frame(Opcode.TEXT, payload).serialize(mask=True, extensions=[])
        assert client_text_frame(payload, key) == expected

    def test_only_an_open_connection_without_extensions_or_a_fragmented_send(self) -> None:
        protocol = open_protocol()
        assert can_send_directly(protocol)
        protocol.send_text(b"part", fin=False)
        assert not can_send_directly(protocol)
        protocol.send_continuation(b"end", fin=True)
        assert can_send_directly(protocol)
        protocol.send_close()
        assert not can_send_directly(protocol)
