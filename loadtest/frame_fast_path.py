"""A fast path for the common frame each way, beside websockets' Sans-I/O protocol. No I/O.

Nearly every frame a chat server sends is one small, final, unmasked text frame (a chunk).
Parsing it through ``ClientProtocol.receive_data`` costs ~2.8 µs (a bytearray buffer, nested
generators, a ``Frame`` dataclass, an events list); reading its two or four header bytes here
and slicing the payload costs ~0.4 µs (``bench/frame_parse.py``). Everything else, and every
frame that is not that one shape, still goes through websockets, which keeps the handshake,
control frames, fragmentation, close, limits and every error.

The other way, a message we send is one masked text frame: :func:`client_text_frame` builds
the bytes websockets would (given the same masking key) while the connection is open, with no
extension and no fragmented send in progress (:func:`can_send_directly`); otherwise websockets
frames it.

How the receiving side stays exactly equivalent (``tests/test_frame_fast_path.py`` checks it
on arbitrary byte streams split at arbitrary points):

- websockets only ever receives **whole frames** from here, so between two calls its parser is
  always at a frame boundary, and a frame taken here is one it would have turned into a
  ``Frame(TEXT, payload, fin=True)`` event with no other effect. Bytes of an incomplete frame
  wait here until the frame is complete, as they would in websockets' own buffer.
- A frame is taken here only while the connection is OPEN, not inside a fragmented message and
  without extensions (``permessage-deflate`` rewrites frames), and only if its length is within
  ``max_size`` as websockets would compute it.
- Whatever websockets rejects *before* a frame is complete (a masked server frame, an invalid
  opcode, a length over ``max_size``), and everything once the connection is no longer OPEN
  (closing, failed), is handed to websockets at once, with all that follows: from then on this
  is a plain pass-through, so the error arrives at the same byte as it would without us.

It relies on four attributes of websockets' ``Protocol`` that are not documented API
(``current_size``, ``max_message_size``, ``max_fragment_size``, and ``_state``, which the
``state`` property returns: read per frame, the property's call was ~0.1 µs a chunk); the
differential test is what tells an upgrade of websockets that broke it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from websockets.client import ClientProtocol
from websockets.protocol import Event, State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

#: First header byte of the common frame: FIN, no reserved bits, opcode 1 (text).
FIN_TEXT = 0x81
#: Opcodes websockets accepts (continuation, text, binary, close, ping, pong).
_VALID_OPCODES = frozenset({0x0, 0x1, 0x2, 0x8, 0x9, 0xA})
_OPEN = State.OPEN


class FrameFastPath:
    """Splits received bytes into common text frames (taken here) and everything else (fed to
    the connection's websockets protocol, whole frames at a time).

    Args:
        protocol: the connection's protocol, handshake done (state OPEN).
    """

    __slots__ = ("_passthrough", "_pending", "_protocol", "_whole_limit")

    def __init__(self, protocol: ClientProtocol) -> None:
        self._protocol = protocol
        #: Bytes of a frame not yet complete (empty between frames).
        self._pending = bytearray()
        #: Once websockets has been handed a frame it rejects early, or the connection left
        #: OPEN, every byte goes straight to it.
        self._passthrough = protocol.state is not _OPEN or bool(protocol.extensions)
        #: :meth:`_max_size` outside a fragmented message, where it never changes.
        self._whole_limit = self._max_size_for(None)

    def receive_data(self, data: bytes | bytearray | memoryview) -> Sequence[bytes | Event]:
        """Feed bytes read from the socket; return what they completed, in stream order.

        ``data`` may be a view of a buffer that is reused after this call: nothing keeps it.

        Returns:
            For each frame completed: its payload (``bytes``) if it was a common text frame,
            else the events websockets made of it (``Frame`` objects). websockets' writes
            (pongs, close answers) and ``parser_exc`` are left on the protocol as usual.
        """
        protocol = self._protocol
        if self._passthrough:
            # websockets copies ``data`` into its own buffer: a view is as good as bytes
            protocol.receive_data(data)  # type: ignore[arg-type]
            return protocol.events_received()
        pending = self._pending
        if not pending:
            # The usual read (the loop below takes it too, ~0.7 µs slower).
            payload = self.whole_text(data, len(data))
            if payload is not None:
                return [payload]
        # One copy of the bytes, then each payload is one slice of it: a memoryview or
        # bytearray slice would be an object more per frame. Not while the first frame is
        # still incomplete: a large message arriving read by read would be copied whole on
        # every read, and the loop takes nothing from it anyway.
        frames: bytes | bytearray
        if pending:
            pending += data
            buffer: bytes | bytearray | memoryview = pending
            frames = pending if _first_frame_incomplete(pending) else bytes(pending)
        else:
            buffer = data
            frames = bytes(data)
        size = len(buffer)
        position = 0
        out: list[bytes | Event] = []
        # Both change only when websockets takes a frame (below) or we send a close (between
        # calls): read once per call, not per frame.
        unfragmented = protocol.current_size is None
        takeable = unfragmented and protocol._state is _OPEN
        whole_limit = self._whole_limit
        while size - position >= 2:
            head1 = frames[position]
            head2 = frames[position + 1]
            if (
                head1 == FIN_TEXT
                and head2 < 126  # unmasked, one-byte length
                and takeable
                and (whole_limit is None or head2 <= whole_limit)
            ):
                # the common frame, checked first; the loop below would take it the same way
                end = position + 2 + head2
                if end > size:
                    break  # incomplete: wait for the rest
                # ``frames`` is a bytearray only while its first frame is incomplete, when
                # nothing is taken: every payload taken is bytes
                out.append(frames[position + 2 : end])  # type: ignore[arg-type]
                position = end
                continue
            if head2 & 0x80 or (head1 & 0x0F) not in _VALID_OPCODES:
                break  # websockets fails the connection on this header: let it, now
            length = head2
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = (frames[position + 2] << 8) | frames[position + 3]
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(frames[position + 2 : position + 10], "big")
                header = 10
            limit = whole_limit if unfragmented else self._max_size()
            if limit is not None and length > limit:
                break  # PayloadTooBig, which websockets raises before reading the payload
            end = position + header + length
            if end > size:
                break  # incomplete: wait for the rest
            if head1 == FIN_TEXT and takeable:
                out.append(frames[position + header : end])  # type: ignore[arg-type]
            else:
                protocol.receive_data(frames[position:end])
                out += protocol.events_received()
                if protocol.state is not _OPEN:
                    position = end
                    self._passthrough = True
                    break
                unfragmented = protocol.current_size is None
                takeable = unfragmented
            position = end
        else:
            # Fewer than two bytes left: a header still to come.
            self._keep(buffer, position)
            return out
        if self._passthrough or (size - position >= 2 and self._rejected_early(buffer, position)):
            self._passthrough = True
            rest = bytes(buffer[position:])
            pending.clear()
            if rest:
                protocol.receive_data(rest)
                out += protocol.events_received()
            return out
        self._keep(buffer, position)
        return out

    def whole_text(self, data: bytes | bytearray | memoryview, size: int) -> bytes | None:
        """The payload if ``data[:size]`` is exactly one whole common frame (final, unmasked
        text, one-byte length) that :meth:`receive_data` would take here, else ``None``
        without consuming anything: then call :meth:`receive_data`.

        Most reads are that one frame; a caller holding a read buffer asks this first and
        saves the slice of the buffer and the list that :meth:`receive_data` returns.
        """
        length = size - 2
        if (
            0 <= length < 126
            and data[0] == FIN_TEXT
            and data[1] == length
            and not self._pending
            and not self._passthrough
        ):
            protocol = self._protocol
            if (
                protocol.current_size is None
                and protocol._state is _OPEN
                and (self._whole_limit is None or length <= self._whole_limit)
            ):
                return bytes(data[2:size])
        return None

    def receive_eof(self) -> Sequence[bytes | Event]:
        """The server ended TCP: hand websockets what is left of an incomplete frame, then EOF."""
        protocol = self._protocol
        if self._pending:
            protocol.receive_data(bytes(self._pending))
            self._pending.clear()
        protocol.receive_eof()
        return protocol.events_received()

    def _keep(self, buffer: bytes | bytearray | memoryview, position: int) -> None:
        """Keep the bytes of the incomplete frame at ``position`` (copied: ``buffer`` may be
        a view of a read buffer that the next read overwrites)."""
        pending = self._pending
        if buffer is pending:
            if position:
                del pending[:position]
        elif position < len(buffer):
            pending += buffer[position:]

    def _max_size(self) -> int | None:
        """The largest frame payload websockets accepts next (its own rule, in ``parse``)."""
        return self._max_size_for(self._protocol.current_size)

    def _max_size_for(self, current: int | None) -> int | None:
        protocol = self._protocol
        limit = protocol.max_message_size
        if limit is not None and current is not None:
            limit -= current
        fragment_limit = protocol.max_fragment_size
        if fragment_limit is not None:
            limit = fragment_limit if limit is None else min(limit, fragment_limit)
        return limit

    def _rejected_early(self, buffer: bytes | bytearray | memoryview, position: int) -> bool:
        """Whether the header at ``position`` is one websockets rejects before the payload."""
        head1, head2 = buffer[position], buffer[position + 1]
        if head2 & 0x80 or (head1 & 0x0F) not in _VALID_OPCODES:
            return True
        header = _header_and_length(buffer, position)
        if header is None:
            return False
        limit = self._max_size()
        return limit is not None and header[1] > limit


def _header_and_length(
    buffer: bytes | bytearray | memoryview, position: int
) -> tuple[int, int] | None:
    """The header's size (mask key not counted) and the payload's length of the frame at
    ``position``, or ``None`` while its length bytes are still to come. (The loop in
    :meth:`FrameFastPath.receive_data` reads the same fields inline: a call per frame there
    would cost what the loop saves.)"""
    size = len(buffer) - position
    if size < 2:
        return None
    length = buffer[position + 1] & 0x7F
    if length == 126:
        if size < 4:
            return None
        return 4, (buffer[position + 2] << 8) | buffer[position + 3]
    if length == 127:
        if size < 10:
            return None
        return 10, int.from_bytes(buffer[position + 2 : position + 10], "big")
    return 2, length


def _first_frame_incomplete(buffer: bytearray) -> bool:
    """Whether the bytes at the start of ``buffer`` are less than one whole frame."""
    header = _header_and_length(buffer, 0)
    return header is None or len(buffer) < header[0] + header[1]


def can_send_directly(protocol: ClientProtocol) -> bool:
    """Whether a text frame may be built by :func:`client_text_frame` instead of websockets:
    open, no fragmented send in progress, no extension rewriting frames."""
    return (
        protocol.state is _OPEN
        and not protocol.expect_continuation_frame
        and not protocol.extensions
    )


def client_text_frame(payload: bytes, mask: bytes) -> bytes:
    """The bytes websockets' ``Frame(TEXT, payload).serialize(mask=True)`` makes with this
    masking key (``tests/test_frame_fast_path.py``), without a ``Frame`` object, its checks
    and ``secrets.token_bytes`` (a system call per frame)."""
    length = len(payload)
    if length < 126:
        head = bytes((FIN_TEXT, 0x80 | length))
    elif length < 65536:
        head = struct.pack("!BBH", FIN_TEXT, 0xFE, length)
    else:
        head = struct.pack("!BBQ", FIN_TEXT, 0xFF, length)
    return head + mask + apply_mask(payload, mask)
