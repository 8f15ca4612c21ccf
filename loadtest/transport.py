"""One gevent-native WebSocket client on the ``websockets`` Sans-I/O ``ClientProtocol``.

Why not ``websockets.sync``: it costs three file descriptors and a thread per connection and
fails near 6.7k connections. Why not ``websocket-client``: half the throughput per core. Here
each connection is one socket read into a reused buffer: on plain TCP by a readability callback
in the gevent hub while all is usual (pongs the protocol owes are written from there too),
else (TLS, a close begun, a failure) by a reader greenlet. Either feeds the protocol, stamps
every frame on the :func:`time.perf_counter` clock, and hands it to a :class:`FrameHandler`
*inline*. The hub callback stamps a frame with the moment its bytes arrived (the kernel's
receive stamp, :mod:`loadtest.receive_stamps`, on plain TCP to a loopback peer, or to any with
``receive_clock="kernel"``, where Linux gives one); the reader greenlet and the frames that came
with the handshake, with the moment they were read. The handler gets them with no queue and,
in the hub, no context switch at all per chunk (see ``bench/hot_path.py`` and
``bench/compare_baseline.py``); it does the per-chunk work and wakes its user greenlet once per
stream.

Opening is timed as the contract says: the name is resolved first (gevent's resolver), so
``connect_ms`` runs from the TCP connect to the accepted handshake and the lookup is kept apart
(``dns_ms``). Every wait is bounded and classified: a TCP connect that never completes is
``connect_timeout``, an accepted TCP connection with no handshake answer is ``timeout``, and the
whole open stays within ``open_timeout_s``. Once a close has begun (ours, the server's, or
websockets failing the connection), the server has ``close_timeout_s`` to end TCP before the
socket is dropped.

Proxy settings in the environment are never read (the target is always dialled directly), and
permessage-deflate is off unless asked for (it costs ~9 % throughput and hides wire size).

After the handshake, received bytes go through :class:`~loadtest.frame_fast_path.FrameFastPath`:
the common frame (final, unmasked, small text) is sliced out there at ~0.4 µs instead of ~2.8 µs
through websockets' parser, which still gets every other frame, whole, and so keeps control
frames, fragmentation, close and every error exactly as before.
"""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
import ssl as stdlib_ssl
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.lock
from gevent import socket, ssl
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI, PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from loadtest import __version__
from loadtest.entropy import mask_key
from loadtest.errors import HandshakeError, TransportError, UsageError
from loadtest.frame_fast_path import FrameFastPath, can_send_directly, client_text_frame
from loadtest.protocol import Violation, ViolationKind
from loadtest.receive_stamps import CLOCKS, STAMP_SPACE, arrival, wants_kernel_stamps
from loadtest.receive_stamps import enable as enable_receive_stamps

#: Close code the protocol reports when the TCP connection ended without a close frame.
ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)
READ_BUFFER_BYTES = 16384
#: One read buffer for every connection of the process. Safe because no reader (hub callback
#: or greenlet) yields between ``recv_into`` filling it and ``receive_data`` copying out of it
#: (both are non-blocking once the socket is readable), and cheap: 10,000 idle connections
#: would otherwise hold 10,000 buffers.
_SHARED_READ_BUFFER = bytearray(READ_BUFFER_BYTES)
_SHARED_READ_VIEW = memoryview(_SHARED_READ_BUFFER)
_SHARED_READ_BUFFERS = [_SHARED_READ_BUFFER]  # as recvmsg_into takes it
_OPEN = State.OPEN
USER_AGENT = f"loadtest/{__version__}"
_END_OF_HEAD = b"\r\n\r\n"


class FrameHandler(Protocol):
    """Receives a connection's data frames, in arrival order, from the connection's reader.

    Handlers must not block: they may run in the gevent hub itself (plain TCP), where a wait
    is an error. A send they start is handed to a greenlet (:meth:`WebSocketConnection.send_text`).

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


def _violation_of(parser_exc: BaseException) -> Violation | None:
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


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to open a connection.

    Attributes:
        headers: extra handshake headers (``X-API-Key``…). Never logged.
        open_timeout_s: DNS + TCP connect + TLS + handshake, together.
        close_timeout_s: once a close has begun, how long the server has to end TCP before
            the socket is dropped (a server that never answers a close costs no more).
        insecure: skip certificate verification for ``wss://`` (self-signed test targets).
        ca_file: trust this PEM bundle in addition to nothing else (a private CA).
        compression: offer permessage-deflate.
        max_message_bytes: larger incoming messages close the connection with 1009.
        receive_clock: ``auto`` (the default), ``kernel`` or ``read``: whether plain-TCP reads
            are stamped with the moment the kernel received their bytes, where the platform
            can (``auto``: only to a loopback peer; see
            :func:`loadtest.receive_stamps.wants_kernel_stamps`); else, and always on TLS, a
            read is stamped when it returns.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    insecure: bool = False
    ca_file: str | None = None
    compression: bool = False
    max_message_bytes: int | None = 2**20
    receive_clock: str = "auto"

    def __post_init__(self) -> None:
        if self.receive_clock not in CLOCKS:  # a misspelt clock would quietly read as "read"
            raise UsageError(
                f"receive clock {self.receive_clock!r} is not one of {', '.join(CLOCKS)}"
            )


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


def classify_network_failure(exc: BaseException) -> str:
    """The kind a failed connection is counted under, for WebSocket and REST alike:
    ``tls``, ``timeout``, ``refused``, ``dns``, ``reset`` or ``error``."""
    # TLS first: a certificate error is also a ValueError and an OSError.
    if isinstance(exc, stdlib_ssl.SSLError | stdlib_ssl.CertificateError):
        return "tls"
    if isinstance(exc, stdlib_socket.timeout | TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, stdlib_socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError | EOFError):
        return "reset"
    return "error"


def _resolve(host: str, port: int, deadline: float) -> list[tuple]:
    """Look the host up (gevent's resolver, cooperative), within the open's deadline.

    Raises:
        HandshakeError: ``dns`` (no such name, or no answer in time).
    """
    try:
        with gevent.Timeout(
            max(0.0, deadline - perf_counter()), HandshakeError("dns", "lookup timed out")
        ):
            addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except OSError as exc:
        raise HandshakeError("dns", type(exc).__name__) from None
    if not addresses:
        raise HandshakeError("dns", "no address")
    return addresses


def _connect(addresses: list[tuple], deadline: float) -> socket.socket:
    """TCP connect to the first address that accepts, within the open's deadline.

    Raises:
        HandshakeError: ``connect_timeout`` (no SYN-ACK in time: a dead host, a full
            backlog), ``refused``, or another network failure class.
    """
    failure: HandshakeError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        remaining = max(0.0, deadline - perf_counter())
        try:
            with gevent.Timeout(
                remaining,
                HandshakeError(
                    "connect_timeout", f"TCP connect not completed within {remaining:.3g} s"
                ),
            ):
                sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            failure = HandshakeError(classify_network_failure(exc), type(exc).__name__)
        except BaseException:
            sock.close()
            raise
    assert failure is not None
    raise failure


class WebSocketConnection:
    """An open client connection. Create with :meth:`open`.

    Sending happens in the caller's greenlet; receiving in a hub callback or this connection's
    reader greenlet. A semaphore keeps writes from interleaving (the reader writes the
    protocol's pongs and closes).
    """

    # Slots: thousands of idle connections per process; a __dict__ of this many attributes
    # is ~0.6 KiB more each.
    __slots__ = (
        "_close_timeout_s", "_failure_reported", "_fragment_opcode", "_fragments", "_frames",
        "_handler", "_hub", "_on_violation", "_protocol", "_reader", "_silent", "_sock",
        "_watcher", "_write_lock", "close_code", "close_reason", "closed", "connect_started_at",
        "dns_ms", "handshake_done_at", "receive_clock",
    )  # fmt: skip

    def __init__(
        self,
        sock: socket.socket,
        protocol: ClientProtocol,
        handler: FrameHandler,
        *,
        connect_started_at: float,
        handshake_done_at: float,
        dns_ms: float = 0.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self._sock = sock
        self._protocol = protocol
        self._handler = handler
        self._write_lock = gevent.lock.Semaphore()
        self._frames = FrameFastPath(protocol)
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.connect_started_at = connect_started_at
        self.handshake_done_at = handshake_done_at
        #: Name lookup before the TCP connect, in milliseconds (kept out of ``connect_ms``).
        self.dns_ms = dns_ms
        self._close_timeout_s = close_timeout_s
        self._on_violation: Callable[[Violation, float], None] | None = getattr(
            handler, "on_violation", None
        )
        self._failure_reported = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = gevent.event.Event()
        self._reader: gevent.Greenlet | None = None
        #: Plain TCP: reads are a readability callback in the gevent hub while all is usual
        #: (:meth:`_on_readable`); ``None`` once a reader greenlet has taken over.
        self._watcher: Any = None
        self._hub = gevent.get_hub()
        self._silent = False
        #: How reads are stamped: ``"kernel"`` (when the bytes arrived) or ``"read"``.
        self.receive_clock = "read"

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

        deadline = perf_counter() + options.open_timeout_s
        dns_started = perf_counter()
        addresses = _resolve(uri.host, uri.port, deadline)
        dns_ms = (perf_counter() - dns_started) * 1000.0
        started = perf_counter()
        sock = _connect(addresses, deadline)
        try:
            late = HandshakeError(
                "timeout", f"TCP accepted, no handshake answer within {options.open_timeout_s:g} s"
            )
            with gevent.Timeout(max(0.0, deadline - perf_counter()), late):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # Asked for before the handshake: Linux turns stamping on a moment later
                # when no other socket has it on.
                stamped = (
                    not uri.secure
                    and wants_kernel_stamps(options.receive_clock, sock.getpeername()[0])
                    and enable_receive_stamps(sock)
                )
                if uri.secure:
                    sock = build_ssl_context(options).wrap_socket(sock, server_hostname=uri.host)
                for data in protocol.data_to_send():
                    sock.sendall(data)
                early_bytes, at = cls._read_handshake(sock, protocol)
                cls._drop_handshake_parser(protocol)
        except (OSError, EOFError) as exc:
            sock.close()
            raise HandshakeError(classify_network_failure(exc), type(exc).__name__) from None
        except BaseException:  # HandshakeError, or a kill (GreenletExit) mid-handshake
            sock.close()
            raise

        connection = cls(
            sock,
            protocol,
            handler,
            connect_started_at=started,
            handshake_done_at=at,
            dns_ms=dns_ms,
            close_timeout_s=options.close_timeout_s,
        )
        if early_bytes:
            connection._dispatch(connection._frames.receive_data(early_bytes), at)
        connection._report_failure(at)
        if uri.secure or connection._protocol.state is not State.OPEN:
            # TLS may hold decrypted bytes the socket no longer shows as readable: a reader
            # greenlet, which recv()s until it would block, never misses them.
            connection._reader = gevent.spawn(connection._read_loop)
        else:
            connection._watcher = connection._hub.loop.io(sock.fileno(), 1)
            connection.receive_clock = "kernel" if stamped else "read"
            connection._watcher.start(
                connection._on_readable_stamped if stamped else connection._on_readable
            )
        return connection

    @staticmethod
    def _read_handshake(sock: socket.socket, protocol: ClientProtocol) -> tuple[bytes, float]:
        """Read until websockets accepts the response.

        The protocol is fed only up to the end of the response head: frames that came in the
        same read are returned as bytes, for the fast path, so that websockets' frame parser
        starts at a frame boundary (a 101 has no body). A refusal with a body gets it all.

        Returns:
            (bytes after the response head; the :func:`perf_counter` stamp of the last read).
        """
        head: bytearray | None = bytearray()  # the response head so far; None once complete
        while True:
            received = sock.recv_into(_SHARED_READ_BUFFER)
            at = perf_counter()
            rest = b""
            if not received:
                protocol.receive_eof()
            else:
                data = bytes(_SHARED_READ_VIEW[:received])
                if head is not None:
                    head += data
                    end = head.find(_END_OF_HEAD)
                    if end >= 0:
                        cut = len(data) - (len(head) - end - len(_END_OF_HEAD))
                        data, rest, head = data[:cut], data[cut:], None
                protocol.receive_data(data)
            if not any(isinstance(event, Response) for event in protocol.events_received()):
                if not rest:
                    if not received:
                        raise HandshakeError("reset", "connection closed during handshake")
                    continue
                # A response with a body (not a 101): websockets reads the body first.
                protocol.receive_data(rest)
                rest = b""
                if not any(isinstance(e, Response) for e in protocol.events_received()):
                    continue
            error = protocol.handshake_exc
            if isinstance(error, InvalidStatus):
                raise HandshakeError(str(error.response.status_code))
            if error is not None:
                raise HandshakeError("invalid", type(error).__name__)
            return rest, at

    @staticmethod
    def _drop_handshake_parser(protocol: ClientProtocol) -> None:
        """Let go of the handshake response (~2 KiB per idle connection) and the URL.

        websockets' client parser is one generator that parses the response and then, from
        inside the same frame, the frames (``yield from super().parse()``), so the response,
        its headers and body stay referenced for the connection's whole life. Only the head
        was fed (:meth:`_read_handshake`), so the reader is empty and at a frame boundary: a
        fresh frame parser started there is the generator websockets would be running.
        """
        if protocol.state is State.OPEN and not protocol.reader.buffer:
            parser = WebSocketProtocol.parse(protocol)
            next(parser)  # to its first wait for bytes, as websockets starts its parsers
            protocol.parser = parser
            # The parsed URL (host, and a resource name holding the token) is read only to
            # build the handshake request (``ClientProtocol.connect``): ~0.45 KiB per idle
            # connection, and one copy of the token fewer in memory.
            protocol.uri = None  # type: ignore[assignment]

    def send_text(self, payload: bytes) -> float:
        """Send one text frame; return the :func:`perf_counter` stamp taken just before writing.

        Called in the hub (a heartbeat timer's ``ping``, a ``pong`` answering the server's),
        it must never block: see :meth:`_send_from_hub`.

        Raises:
            TransportError: the connection is not open, or (from the hub) the socket failed.
        """
        if gevent.getcurrent() is self._hub:
            return self._send_from_hub(payload)
        with self._write_lock:
            data = self._text_frame(payload)
            sent_at = perf_counter()
            try:
                if self._watcher is not None:  # plain TCP: write what the kernel takes now
                    try:
                        sent = self._sock._sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent == len(data):
                        return sent_at
                    data = memoryview(data)[sent:]
                self._sock.sendall(data)  # waits for room (and is what TLS needs)
            except OSError as exc:
                raise TransportError(f"send failed: {type(exc).__name__}") from None
        return sent_at

    def _text_frame(self, payload: bytes) -> bytes:
        """The bytes of one text frame, built here in the usual case (a ``getrandom`` call
        and ~5 µs of websockets' framing fewer per message), else by websockets.

        Raises:
            TransportError: the connection is not open.
        """
        protocol = self._protocol
        if can_send_directly(protocol):
            return client_text_frame(payload, mask_key())
        if protocol.state is not State.OPEN:
            raise TransportError("connection is not open")
        protocol.send_text(payload)
        return b"".join(protocol.data_to_send())

    def _send_from_hub(self, payload: bytes) -> float:
        """Send a frame from the hub without blocking it (see :meth:`_write_from_hub`); on
        other sockets (TLS, a reader greenlet's) the send goes to a greenlet of its own."""
        if self._protocol.state is not State.OPEN:
            raise TransportError("connection is not open")
        if self._watcher is None:
            gevent.spawn(self._send_quietly, payload)
            return perf_counter()
        data = self._text_frame(payload)
        sent_at = perf_counter()
        try:
            self._write_from_hub(data)
        except OSError as exc:
            raise TransportError(f"send failed: {type(exc).__name__}") from None
        return sent_at

    def _write_from_hub(self, data: bytes) -> None:
        """Write to the plain-TCP socket now if nobody else is writing, else after them.

        A ping, a pong or a protocol-level pong is a few dozen bytes and an idle socket's
        kernel buffer has room: written at once, with no greenlet (one per heartbeat kept
        thousands alive at a time at 10,000 idle connections, ~8 KiB each). What the kernel
        does not take goes to a greenlet that holds the write lock until it is written, so
        frames never interleave.

        Raises:
            OSError: the socket failed (not a full buffer: that is waited out in a greenlet).
        """
        if self._write_lock.locked():
            gevent.spawn(self._write_after_lock, data)
            return
        try:
            sent = self._sock._sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self._write_lock.acquire(blocking=False)  # free: checked above, nothing ran since
            gevent.spawn(self._write_rest, memoryview(data)[sent:])

    def _write_rest(self, rest: memoryview) -> None:
        try:
            self._sock.sendall(rest)
        except OSError:
            pass  # the reader sees the connection fail and reports it
        finally:
            self._write_lock.release()

    def _write_after_lock(self, data: bytes) -> None:
        with self._write_lock, contextlib.suppress(OSError):
            self._sock.sendall(data)

    def _send_quietly(self, payload: bytes) -> None:
        with contextlib.suppress(TransportError):
            self.send_text(payload)

    def close(self, code: int = 1000, reason: str = "", timeout_s: float | None = None) -> None:
        """Close politely: send a close frame, wait for the server to end TCP, then let go.

        Returns within about ``timeout_s`` (default: the connection's ``close_timeout_s``)
        whatever the server does: one that never answers, or never reads, is reset.
        """
        if self.closed.is_set():
            return
        timeout_s = self._close_timeout_s if timeout_s is None else timeout_s
        deadline = perf_counter() + timeout_s
        # A send stuck on a server that stopped reading holds the lock: do not wait behind it.
        if not self._write_lock.acquire(timeout=timeout_s):
            self.abort()
            return
        try:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close(code, reason)
                with contextlib.suppress(OSError), gevent.Timeout(timeout_s, False):
                    for data in self._protocol.data_to_send():
                        if data:
                            self._sock.sendall(data)
        finally:
            self._write_lock.release()
        if not self.closed.wait(max(0.0, deadline - perf_counter())):
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
        self._stop_watching()
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent() and not reader.dead:
            reader.kill(block=True)  # its ``finally`` closes the socket, so the RST goes out
        self._finish(perf_counter())

    # --- reading: a hub callback while all is usual, a greenlet for everything else ---------

    def _stop_watching(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.stop()
            watcher.close()

    def _on_readable(self) -> None:
        """The socket is readable: read, parse, dispatch, right here in the hub.

        No greenlet switch, no ``Waiter`` and no ``recv`` that fails with EAGAIN per read (a
        reader greenlet pays all three per chunk, and ~8 KiB of parked stack per idle
        connection). Handlers only record and set events; a send they start, and a pong the
        protocol owes, is written without blocking (:meth:`_write_from_hub`). Anything
        unusual (end of stream, an error, a close begun) hands the connection to
        :meth:`_resume`, a reader greenlet, for the rest of its life.
        """
        try:
            received = self._sock._sock.recv_into(_SHARED_READ_BUFFER)
        except BlockingIOError:
            return
        except OSError:
            received = 0
        self._consume(received, perf_counter())

    def _on_readable_stamped(self) -> None:
        """:meth:`_on_readable`, with the read stamped when the kernel received its bytes
        (:mod:`loadtest.receive_stamps`), not when this loop got round to reading them. A
        callback of its own rather than a test per read in one: the read clock keeps the
        cheaper ``recv_into`` (``bench/README.md``, "Against the hand-written client")."""
        try:
            received, ancillary, _, _ = self._sock._sock.recvmsg_into(
                _SHARED_READ_BUFFERS, STAMP_SPACE
            )
        except BlockingIOError:
            return
        except OSError:
            received, ancillary = 0, None
        at = perf_counter()
        self._consume(received, arrival(ancillary, at, time()) if ancillary else at)

    def _consume(self, received: int, at: float) -> None:
        """Parse and dispatch one read's bytes in the hub, or hand the connection over."""
        try:
            if received:
                events = self._frames.receive_data(_SHARED_READ_VIEW[:received])
                if events:
                    self._dispatch(events, at)
                protocol = self._protocol
                if protocol.parser_exc is None and protocol.state is _OPEN:
                    if not protocol.writes:
                        return
                    # An answer the protocol owes while open (a pong to the server's ping):
                    # written from here, or a server pinging every 20 s would turn every
                    # idle connection into a parked reader greenlet (~8 KiB) for good.
                    try:
                        self._write_from_hub(b"".join(protocol.data_to_send()))
                        return
                    except OSError:
                        pass  # the reader greenlet finds out what failed and reports it
        except BaseException:
            self._hand_over(received, at)
            raise
        self._hand_over(received, at)

    def _hand_over(self, received: int, at: float) -> None:
        self._stop_watching()
        if self._reader is None:
            self._reader = gevent.spawn(self._resume, received, at)

    def _resume(self, received: int, at: float) -> None:
        """Finish the read the hub began, then go on reading in this greenlet."""
        try:
            if not received:
                events = self._frames.receive_eof()
                if events:
                    self._dispatch(events, at)
            if self._after_read(received, at):
                self._read_loop()
                return
        except BaseException:
            self._finish(perf_counter())
            raise
        self._finish(perf_counter())

    def _after_read(self, received: int, at: float) -> bool:
        """Report a parser failure, answer the protocol; whether reading goes on."""
        protocol = self._protocol
        if protocol.parser_exc is not None and not self._failure_reported:
            self._report_failure(at)
        if protocol.writes:
            self._flush_protocol_writes()
        if not received or protocol.state is State.CLOSED:
            return False
        if protocol.state is State.CLOSING and self._sock.timeout is None:
            # The server now owes us the end of TCP; one that never sends it must not keep
            # this socket (and greenlet) forever. A timeout is an OSError.
            self._sock.settimeout(self._close_timeout_s)
        return True

    def _read_loop(self) -> None:
        frames = self._frames
        recv_into = self._sock.recv_into
        try:
            while True:
                try:
                    received = recv_into(_SHARED_READ_BUFFER)
                except OSError:  # reset, or the socket closed under us by abort()
                    received = 0
                at = perf_counter()
                if received:
                    events = frames.receive_data(_SHARED_READ_VIEW[:received])
                else:
                    events = frames.receive_eof()
                if events:
                    self._dispatch(events, at)
                if not self._after_read(received, at):
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

    def _dispatch(self, events: list[bytes | object], at: float) -> None:
        handler = self._handler
        for event in events:
            if type(event) is bytes:  # a common text frame, from the fast path
                handler.on_text(event, at)
                continue
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

    def _report_failure(self, at: float) -> None:
        """Hand the handler the violation for which websockets failed the connection, once."""
        parser_exc = self._protocol.parser_exc
        if parser_exc is None or self._failure_reported:
            return
        self._failure_reported = True
        violation = _violation_of(parser_exc)
        if violation is not None and self._on_violation is not None and not self._silent:
            self._on_violation(violation, at)

    def _finish(self, at: float) -> None:
        if self.closed.is_set():
            return
        self._stop_watching()
        protocol = self._protocol
        received = protocol.close_rcvd
        sent = protocol.close_sent
        if received is not None:
            self.close_code, self.close_reason = int(received.code), received.reason
        elif sent is not None and self._failure_reported:
            # We failed the connection (1007, 1009, 1002): that code says why it ended,
            # whatever the server did after; a plain 1006 would hide it.
            self.close_code, self.close_reason = int(sent.code), sent.reason
        else:
            self.close_code, self.close_reason = ABNORMAL_CLOSURE, ""
        try:
            self._sock.close()
        finally:
            self.closed.set()
            if not self._silent:
                self._handler.on_close(self.close_code, self.close_reason, at)
