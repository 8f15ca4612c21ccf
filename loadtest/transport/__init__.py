"""One gevent-native WebSocket client on the ``websockets`` Sans-I/O ``ClientProtocol``.

``opening`` opens a connection: the URL, DNS, TCP connect, TLS and the handshake, each wait
bounded and each failure classified (:class:`ConnectOptions` says how). ``connection`` is the
open connection (:class:`WebSocketConnection`): it reads in a gevent hub callback or a reader
greenlet, hands every frame inline to a :class:`FrameHandler` (``handler``), and closes; its
writes, which must never block the hub, are ``writing``'s. ``read_buffer`` is the one buffer
every read of the process goes into.

Imports run one way: ``connection`` imports ``writing``, ``opening``, ``handler`` and
``read_buffer``; ``opening`` imports ``read_buffer``; none imports this ``__init__``, which only
re-exports, so ``from loadtest.transport import …`` is all a caller needs.
"""

from loadtest.transport.connection import ABNORMAL_CLOSURE, WebSocketConnection
from loadtest.transport.handler import FrameHandler
from loadtest.transport.opening import (
    USER_AGENT,
    ConnectOptions,
    build_ssl_context,
    classify_network_failure,
    parse_ws_url,
)
from loadtest.transport.read_buffer import READ_BUFFER_BYTES

__all__ = [
    "ABNORMAL_CLOSURE",
    "READ_BUFFER_BYTES",
    "USER_AGENT",
    "ConnectOptions",
    "FrameHandler",
    "WebSocketConnection",
    "build_ssl_context",
    "classify_network_failure",
    "parse_ws_url",
]
