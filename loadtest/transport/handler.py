"""What a connection hands its frames, and its violations, to.

The connection calls a :class:`FrameHandler` inline from its reader; :func:`violation_of`
names, as a protocol :class:`~loadtest.protocol.Violation`, why websockets failed a
connection over what the server sent.
"""

from __future__ import annotations

from typing import Protocol

from websockets.exceptions import PayloadTooBig, ProtocolError

from loadtest.protocol import Violation, ViolationKind


class FrameHandler(Protocol):
    """Receives a connection's data frames, in arrival order, from the connection's reader.

    Handlers must not block: they may run in the gevent hub itself (plain TCP), where a wait
    is an error. A send they start is handed to a greenlet
    (:meth:`~loadtest.transport.WebSocketConnection.send_text`).

    A handler may also define ``on_violation(violation: Violation, at: float) -> None``: it is
    called when websockets itself fails the connection over what the server sent (invalid
    UTF-8 in a text frame: ``invalid_utf8``, close 1007; a message over ``max_message_bytes``:
    ``oversized_message``, 1009; broken framing: ``framing_error``, 1002), just before the
    connection ends. It is optional (looked up once per connection) so that handlers written
    before it keep working; they still see the close code in :meth:`on_close`.
    """

    def on_text(self, payload: bytes, at: float) -> None: ...

    def on_binary(self, payload: bytes, at: float) -> None: ...

    def on_close(self, code: int, reason: str, at: float) -> None: ...


def violation_of(parser_exc: BaseException) -> Violation | None:
    """The violation behind websockets failing a connection, or ``None`` for a plain EOF."""
    if isinstance(parser_exc, UnicodeDecodeError):
        return Violation(ViolationKind.INVALID_UTF8, f"{parser_exc.reason} at {parser_exc.start}")
    if isinstance(parser_exc, PayloadTooBig):
        return Violation(ViolationKind.OVERSIZED_MESSAGE, str(parser_exc)[:80])
    if isinstance(parser_exc, EOFError):
        return None
    if isinstance(parser_exc, ProtocolError):
        return Violation(ViolationKind.FRAMING_ERROR, str(parser_exc)[:80])
    return Violation(ViolationKind.FRAMING_ERROR, type(parser_exc).__name__)
