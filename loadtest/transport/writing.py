"""Writing a connection's frames without ever blocking the gevent hub.

:class:`WriteSide` is the write half of :class:`~loadtest.transport.WebSocketConnection`, a
mixin with no state of its own: the connection's ``__slots__`` hold what it uses. One write lock
keeps frames from interleaving, whoever writes: the caller's greenlet (``send_text``), a hub
callback (a heartbeat's ping, a pong), or the reader (the pongs and closes websockets owes).
"""

from __future__ import annotations

import contextlib
from time import perf_counter
from typing import Any

import gevent
import gevent.lock
from gevent import socket
from websockets.client import ClientProtocol
from websockets.protocol import State

from loadtest.entropy import mask_key
from loadtest.errors import TransportError
from loadtest.frame_fast_path import can_send_directly, client_text_frame


class WriteSide:
    """Sending text frames and the protocol's own writes, from a greenlet or from the hub."""

    # No slots here (the connection declares them): an empty tuple keeps instances
    # without a __dict__, ~0.6 KiB each at thousands of idle connections.
    __slots__ = ()

    _sock: socket.socket
    _protocol: ClientProtocol
    _write_lock: gevent.lock.Semaphore
    #: Not ``None`` while a hub callback reads the socket (plain TCP, all usual).
    _watcher: Any
    _hub: gevent.hub.Hub

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
