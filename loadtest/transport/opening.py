"""Opening a WebSocket: URL, DNS, TCP connect, TLS and the handshake, each bounded.

Opening is timed as the contract says: the name is resolved first (gevent's resolver), so
``connect_ms`` runs from the TCP connect to the accepted handshake and the lookup is kept apart
(``dns_ms``). Every wait is bounded and classified: a TCP connect that never completes is
``connect_timeout``, an accepted TCP connection with no handshake answer is ``timeout``, and the
whole open stays within ``open_timeout_s``.

Proxy settings in the environment are never read (the target is always dialled directly), and
permessage-deflate is off unless asked for (it costs ~9 % throughput and hides wire size).

Nothing here reads frames: :func:`open_socket` hands back the socket, the protocol and any bytes
that came after the handshake response, and :mod:`loadtest.transport.connection` takes it from
there.
"""

from __future__ import annotations

import socket as stdlib_socket
import ssl as stdlib_ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import perf_counter

import gevent
from gevent import socket, ssl
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, InvalidURI
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.http11 import Response
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from loadtest import __version__
from loadtest.errors import HandshakeError, UsageError
from loadtest.receive_stamps import CLOCKS, wants_kernel_stamps
from loadtest.receive_stamps import enable as enable_receive_stamps
from loadtest.transport.read_buffer import SHARED_READ_BUFFER, SHARED_READ_VIEW

USER_AGENT = f"loadtest/{__version__}"
_END_OF_HEAD = b"\r\n\r\n"


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


@dataclass(frozen=True, slots=True)
class OpenedSocket:
    """A socket whose handshake websockets has accepted (or refused with a close), not yet read.

    Attributes:
        sock: the TCP socket, or the TLS socket over it for ``wss://``.
        protocol: websockets' client protocol, past the handshake.
        early_bytes: bytes that came after the response head in its last read (frames).
        connect_started_at: :func:`perf_counter` just before the TCP connect.
        handshake_done_at: :func:`perf_counter` stamp of the read that completed the handshake.
        dns_ms: the name lookup before the TCP connect, in milliseconds.
        secure: ``wss://`` (kept here: the protocol's URL is dropped after the handshake).
        stamped: the kernel stamps this socket's reads (:mod:`loadtest.receive_stamps`).
    """

    sock: socket.socket
    protocol: ClientProtocol
    early_bytes: bytes
    connect_started_at: float
    handshake_done_at: float
    dns_ms: float
    secure: bool
    stamped: bool


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


def open_socket(url: str, options: ConnectOptions) -> OpenedSocket:
    """Resolve, connect, wrap in TLS for ``wss://``, and complete the handshake, all within
    ``options.open_timeout_s``.

    Raises:
        HandshakeError: with ``kind`` the HTTP status or the network failure class.
        UsageError: the URL is not a WebSocket URL.
    """
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
            early_bytes, at = _read_handshake(sock, protocol)
            _drop_handshake_parser(protocol)
    except (OSError, EOFError) as exc:
        sock.close()
        raise HandshakeError(classify_network_failure(exc), type(exc).__name__) from None
    except BaseException:  # HandshakeError, or a kill (GreenletExit) mid-handshake
        sock.close()
        raise
    return OpenedSocket(
        sock=sock,
        protocol=protocol,
        early_bytes=early_bytes,
        connect_started_at=started,
        handshake_done_at=at,
        dns_ms=dns_ms,
        secure=uri.secure,
        stamped=bool(stamped),
    )


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
        received = sock.recv_into(SHARED_READ_BUFFER)
        at = perf_counter()
        rest = b""
        if not received:
            protocol.receive_eof()
        else:
            data = bytes(SHARED_READ_VIEW[:received])
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


def _drop_handshake_parser(protocol: ClientProtocol) -> None:
    """Let go of the handshake response (~2 KiB per idle connection) and the URL.

    websockets' client parser is one generator that parses the response and then, from
    inside the same frame, the frames (``yield from super().parse()``), so the response,
    its headers and body stay referenced for the connection's whole life. Only the head
    was fed (:func:`_read_handshake`), so the reader is empty and at a frame boundary: a
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
