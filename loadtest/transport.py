"""One gevent-native WebSocket client on the ``websockets`` Sans-I/O ``ClientProtocol``.

Why not ``websockets.sync``: it costs three file descriptors and a thread per connection and
fails near 6.7k connections. Why not ``websocket-client``: half the throughput per core. Here
each connection is one socket and one reader greenlet that reads into a reused buffer, feeds
the protocol, answers server pings, stamps every frame with :func:`time.perf_counter` at the
moment its bytes were read, and hands it to a :class:`FrameHandler` *inline*: no queue, so no
extra context switch per chunk (see ``bench/transport_dispatch.py``). The handler does the
per-chunk work and wakes its user greenlet once per stream.

Proxy settings in the environment are never read (the target is always dialled directly), and
permessage-deflate is off unless asked for (it costs ~9 % throughput and hides wire size).
"""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
import ssl as stdlib_ssl
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol

import gevent
import gevent.event
import gevent.lock
from gevent import socket, ssl
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from loadtest import __version__
from loadtest.errors import HandshakeError, TransportError, UsageError

#: Close code the protocol reports when the TCP connection ended without a close frame.
ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)
READ_BUFFER_BYTES = 16384
#: One read buffer for every connection of the process. Safe because a reader greenlet never
#: yields between ``recv_into`` filling it and ``receive_data`` copying out of it (both are
#: non-blocking once the socket is readable), and cheap: 10,000 idle connections would
#: otherwise hold 10,000 buffers.
_SHARED_READ_BUFFER = bytearray(READ_BUFFER_BYTES)
_SHARED_READ_VIEW = memoryview(_SHARED_READ_BUFFER)
USER_AGENT = f"loadtest/{__version__}"


def _read_once(
    recv_into: Callable[[bytearray], int], protocol: ClientProtocol
) -> tuple[int, float]:
    """One read: fill the shared buffer, stamp the moment, hand the bytes to the protocol.

    Returns:
        (bytes read, 0 at end of stream; the :func:`perf_counter` stamp of the read).
    """
    received = recv_into(_SHARED_READ_BUFFER)
    at = perf_counter()
    if received:
        protocol.receive_data(_SHARED_READ_VIEW[:received])
    else:
        protocol.receive_eof()
    return received, at


class FrameHandler(Protocol):
    """Receives a connection's data frames, in the reader greenlet, in arrival order.

    Handlers must not block: they run in the reader greenlet, which also answers pings.
    """

    def on_text(self, payload: bytes, at: float) -> None: ...

    def on_binary(self, payload: bytes, at: float) -> None: ...

    def on_close(self, code: int, reason: str, at: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to open a connection.

    Attributes:
        headers: extra handshake headers (``X-API-Key``…). Never logged.
        open_timeout_s: TCP connect + TLS + handshake, together.
        insecure: skip certificate verification for ``wss://`` (self-signed test targets).
        ca_file: trust this PEM bundle in addition to nothing else (a private CA).
        compression: offer permessage-deflate.
        max_message_bytes: larger incoming messages close the connection with 1009.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    open_timeout_s: float = 10.0
    insecure: bool = False
    ca_file: str | None = None
    compression: bool = False
    max_message_bytes: int | None = 2**20


def build_ssl_context(options: ConnectOptions) -> ssl.SSLContext:
    """A client TLS context: verifying by default, as a release test against prod must be."""
    context = ssl.create_default_context(cafile=options.ca_file)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_ws_url(url: str) -> WebSocketURI:
    """Parse a ``ws://`` / ``wss://`` URL.

    Raises:
        UsageError: not a WebSocket URL.
    """
    try:
        return parse_uri(url)
    except InvalidURI as exc:
        raise UsageError(f"not a ws:// or wss:// URL: {url.split('?')[0]}") from exc


def _classify_os_error(exc: BaseException) -> str:
    if isinstance(exc, stdlib_socket.timeout | TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, stdlib_ssl.SSLError | stdlib_ssl.CertificateError):
        return "tls"
    if isinstance(exc, stdlib_socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return "reset"
    return "error"


class WebSocketConnection:
    """An open client connection. Create with :meth:`open`.

    Sending happens in the caller's greenlet; receiving in this connection's reader greenlet.
    A semaphore keeps the two from interleaving writes (the reader writes pongs and closes).
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: ClientProtocol,
        handler: FrameHandler,
        *,
        connect_started_at: float,
        handshake_done_at: float,
    ) -> None:
        self._sock = sock
        self._protocol = protocol
        self._handler = handler
        self._write_lock = gevent.lock.Semaphore()
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.connect_started_at = connect_started_at
        self.handshake_done_at = handshake_done_at
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = gevent.event.Event()
        self._reader: gevent.Greenlet | None = None
        self._silent = False

    @property
    def connect_ms(self) -> float:
        """TCP connect start → handshake accepted, in milliseconds."""
        return (self.handshake_done_at - self.connect_started_at) * 1000.0

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set() and self._protocol.state is State.OPEN

    @classmethod
    def open(
        cls, url: str, handler: FrameHandler, options: ConnectOptions | None = None
    ) -> WebSocketConnection:
        """Connect, complete the handshake, and start reading.

        Frames that arrive in the same read as the handshake response are delivered too.

        Raises:
            HandshakeError: with ``kind`` the HTTP status or the network failure class.
            UsageError: the URL is not a WebSocket URL.
        """
        options = options or ConnectOptions()
        uri = parse_ws_url(url)
        protocol = ClientProtocol(
            uri,
            extensions=[ClientPerMessageDeflateFactory()] if options.compression else None,
            max_size=options.max_message_bytes,
        )
        request = protocol.connect()
        request.headers["User-Agent"] = USER_AGENT
        for name, value in options.headers.items():
            request.headers[name] = value
        protocol.send_request(request)

        started = perf_counter()
        sock: socket.socket | None = None
        try:
            with gevent.Timeout(options.open_timeout_s):
                sock = socket.create_connection((uri.host, uri.port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if uri.secure:
                    sock = build_ssl_context(options).wrap_socket(sock, server_hostname=uri.host)
                for data in protocol.data_to_send():
                    sock.sendall(data)
                early_frames, at = cls._read_handshake(sock, protocol)
        except (OSError, gevent.Timeout, EOFError) as exc:
            if sock is not None:
                sock.close()
            raise HandshakeError(_classify_os_error(exc), type(exc).__name__) from None
        except BaseException:  # HandshakeError, or a kill (GreenletExit) mid-handshake
            if sock is not None:
                sock.close()
            raise

        connection = cls(
            sock, protocol, handler, connect_started_at=started, handshake_done_at=at
        )
        connection._dispatch(early_frames, at)
        connection._reader = gevent.spawn(connection._read_loop)
        return connection

    @staticmethod
    def _read_handshake(
        sock: socket.socket, protocol: ClientProtocol
    ) -> tuple[list[Frame], float]:
        while True:
            received, at = _read_once(sock.recv_into, protocol)
            events = protocol.events_received()
            for index, event in enumerate(events):
                if isinstance(event, Response):
                    error = protocol.handshake_exc
                    if isinstance(error, InvalidStatus):
                        raise HandshakeError(str(error.response.status_code))
                    if error is not None:
                        raise HandshakeError("invalid", type(error).__name__)
                    frames = [e for e in events[index + 1 :] if isinstance(e, Frame)]
                    return frames, at
            if not received:
                raise HandshakeError("reset", "connection closed during handshake")

    def send_text(self, payload: bytes) -> float:
        """Send one text frame; return the :func:`perf_counter` stamp taken just before writing.

        Raises:
            TransportError: the connection is not open.
        """
        with self._write_lock:
            if self._protocol.state is not State.OPEN:
                raise TransportError("connection is not open")
            self._protocol.send_text(payload)
            writes = self._protocol.data_to_send()
            sent_at = perf_counter()
            try:
                for data in writes:
                    self._sock.sendall(data)
            except OSError as exc:
                raise TransportError(f"send failed: {type(exc).__name__}") from None
        return sent_at

    def close(self, code: int = 1000, reason: str = "", timeout_s: float = 2.0) -> None:
        """Close politely: send a close frame, wait for the server to end TCP, then let go."""
        if self.closed.is_set():
            return
        with self._write_lock:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close(code, reason)
                try:
                    for data in self._protocol.data_to_send():
                        if data:
                            self._sock.sendall(data)
                except OSError:
                    pass
        if not self.closed.wait(timeout_s):
            self.abort()

    def discard(self) -> None:
        """Reset the connection without telling the handler (nobody owns it any more)."""
        self._silent = True
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once with a TCP reset, as a crashing client would."""
        if self.closed.is_set():
            return
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent() and not reader.dead:
            reader.kill(block=True)  # its ``finally`` closes the socket, so the RST goes out
        self._finish(perf_counter())

    def _read_loop(self) -> None:
        sock = self._sock
        protocol = self._protocol
        recv_into = sock.recv_into
        try:
            while True:
                try:
                    received, at = _read_once(recv_into, protocol)
                except OSError:  # reset, or the socket closed under us by abort()
                    received, at = 0, perf_counter()
                    protocol.receive_eof()
                events = protocol.events_received()
                if events:
                    self._dispatch(events, at)
                if protocol.writes:
                    self._flush_protocol_writes()
                if not received or protocol.state is State.CLOSED:
                    break
        finally:
            self._finish(perf_counter())

    def _flush_protocol_writes(self) -> None:
        with self._write_lock:
            try:
                for data in self._protocol.data_to_send():
                    if data:
                        self._sock.sendall(data)
                    else:
                        self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _dispatch(self, events: list[Frame] | list[object], at: float) -> None:
        handler = self._handler
        for event in events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if not event.fin:
                    self._fragment_opcode = opcode
                    self._fragments = [event.data]
                    continue
                payload = event.data
            elif opcode is Opcode.CONT:
                self._fragments.append(event.data)
                if not event.fin:
                    continue
                opcode = self._fragment_opcode or Opcode.BINARY
                payload = b"".join(self._fragments)
                self._fragments = []
            else:
                continue  # ping answered by the protocol; pong and close handled there too
            if opcode is Opcode.TEXT:
                handler.on_text(payload, at)
            else:
                handler.on_binary(payload, at)

    def _finish(self, at: float) -> None:
        if self.closed.is_set():
            return
        received = self._protocol.close_rcvd
        if received is not None:
            self.close_code, self.close_reason = int(received.code), received.reason
        else:
            self.close_code, self.close_reason = ABNORMAL_CLOSURE, ""
        try:
            self._sock.close()
        finally:
            self.closed.set()
            if not self._silent:
                self._handler.on_close(self.close_code, self.close_reason, at)
