"""An open WebSocket connection: its reads, its writes and its close, on gevent.

Why not ``websockets.sync``: it costs three file descriptors and a thread per connection and
fails near 6.7k connections. Why not ``websocket-client``: half the throughput per core. Here
each connection is one socket read into a reused buffer (:mod:`loadtest.transport.read_buffer`):
on plain TCP by a readability callback in the gevent hub while all is usual (pongs the protocol
owes are written from there too), else (TLS, a close begun, a failure) by a reader greenlet.
Either feeds the protocol, stamps every frame on the :func:`time.perf_counter` clock, and hands
it to a :class:`~loadtest.transport.handler.FrameHandler` *inline*. The hub callback stamps a
frame with the moment its bytes arrived (the kernel's receive stamp,
:mod:`loadtest.receive_stamps`, on plain TCP to a loopback peer, or to any with
``receive_clock="kernel"``, where Linux gives one); the reader greenlet and the frames that came
with the handshake, with the moment they were read. The handler gets them with no queue and, in
the hub, no context switch at all per chunk (see ``bench/hot_path.py`` and
``bench/compare_baseline.py``); it does the per-chunk work and wakes its user greenlet once per
stream.

Opening (DNS, TCP, TLS, the handshake, their timeouts) is :mod:`loadtest.transport.opening`;
:meth:`WebSocketConnection.open` calls it and starts reading. Once a close has begun (ours, the
server's, or websockets failing the connection), the server has ``close_timeout_s`` to end TCP
before the socket is dropped.

After the handshake, received bytes go through :class:`~loadtest.frame_fast_path.FrameFastPath`:
the common frame (final, unmasked, small text) is sliced out there at ~0.4 µs instead of ~2.8 µs
through websockets' parser, which still gets every other frame, whole, and so keeps control
frames, fragmentation, close and every error exactly as before.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Sequence
from time import perf_counter, time_ns
from typing import Any

import gevent
import gevent.event
import gevent.lock
from gevent import socket
from websockets.client import ClientProtocol
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from loadtest.frame_fast_path import FrameFastPath
from loadtest.protocol import Violation
from loadtest.receive_stamps import STAMP_SPACE, arrival
from loadtest.transport.handler import FrameHandler, violation_of
from loadtest.transport.opening import ConnectOptions, open_socket

# Module globals under the names the read path has always used: a global lookup per read,
# as before the buffer had a module of its own.
from loadtest.transport.read_buffer import SHARED_READ_BUFFER as _SHARED_READ_BUFFER
from loadtest.transport.read_buffer import SHARED_READ_BUFFERS as _SHARED_READ_BUFFERS
from loadtest.transport.read_buffer import SHARED_READ_VIEW as _SHARED_READ_VIEW
from loadtest.transport.writing import WriteSide

#: Close code the protocol reports when the TCP connection ended without a close frame.
ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)
_OPEN = State.OPEN


class WebSocketConnection(WriteSide):
    """An open client connection. Create with :meth:`open`.

    Sending happens in the caller's greenlet; receiving in a hub callback or this connection's
    reader greenlet. A semaphore keeps writes from interleaving (the reader writes the
    protocol's pongs and closes). The writes themselves (:meth:`send_text` …) are
    :class:`~loadtest.transport.writing.WriteSide`'s.
    """

    # Slots: thousands of idle connections per process; a __dict__ of this many attributes
    # is ~0.6 KiB more each.
    __slots__ = (
        "_close_timeout_s", "_failure_reported", "_fragment_opcode", "_fragments", "_frames",
        "_handler", "_hub", "_last_arrival", "_on_violation", "_protocol", "_reader", "_silent",
        "_sock",
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
        #: The latest read's stamp on the kernel clock: a later read is never stamped earlier.
        self._last_arrival = handshake_done_at
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
        return not self.closed.is_set() and self._protocol.state is _OPEN

    @classmethod
    def open(
        cls, url: str, handler: FrameHandler, options: ConnectOptions | None = None
    ) -> WebSocketConnection:
        """Connect, complete the handshake (:func:`~loadtest.transport.opening.open_socket`),
        and start reading.

        Frames that arrive in the same read as the handshake response are delivered too.

        Raises:
            HandshakeError: with ``kind`` the HTTP status or the network failure class.
            UsageError: the URL is not a WebSocket URL.
        """
        options = options or ConnectOptions()
        opened = open_socket(url, options)
        sock = opened.sock
        at = opened.handshake_done_at
        connection = cls(
            sock,
            opened.protocol,
            handler,
            connect_started_at=opened.connect_started_at,
            handshake_done_at=at,
            dns_ms=opened.dns_ms,
            close_timeout_s=options.close_timeout_s,
        )
        if opened.early_bytes:
            connection._dispatch(connection._frames.receive_data(opened.early_bytes), at)
        connection._report_failure(at)
        if opened.secure or connection._protocol.state is not State.OPEN:
            # TLS may hold decrypted bytes the socket no longer shows as readable: a reader
            # greenlet, which recv()s until it would block, never misses them.
            connection._reader = gevent.spawn(connection._read_loop)
        else:
            stamped = opened.stamped
            connection._watcher = connection._hub.loop.io(sock.fileno(), 1)
            connection.receive_clock = "kernel" if stamped else "read"
            connection._watcher.start(
                connection._on_readable_stamped if stamped else connection._on_readable
            )
        return connection

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
        if ancillary:
            at = arrival(ancillary, at, time_ns())
            # TCP delivers in order, so these bytes arrived no earlier than the last read's;
            # converting a stamp carries ~50 ns of jitter (two clocks read one after the
            # other), which would otherwise make a gap between close packets negative
            if at < self._last_arrival:
                at = self._last_arrival
        self._last_arrival = at
        self._consume(received, at)

    def _consume(self, received: int, at: float) -> None:
        """Parse and dispatch one read's bytes in the hub, or hand the connection over."""
        try:
            if received:
                frames = self._frames
                payload = frames.whole_text(_SHARED_READ_VIEW, received)
                if payload is not None:
                    self._handler.on_text(payload, at)  # a read of one whole chunk: most reads
                else:
                    events = frames.receive_data(_SHARED_READ_VIEW[:received])
                    if events:
                        self._dispatch(events, at)
                protocol = self._protocol
                # ``_state``: what the ``state`` property returns, without its call per read
                # (the fast path reads it so too, and its differential test guards both)
                if protocol.parser_exc is None and protocol._state is _OPEN:
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

    def _dispatch(self, events: Sequence[bytes | object], at: float) -> None:
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
        violation = violation_of(parser_exc)
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
