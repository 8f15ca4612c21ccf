"""When a client's bytes reached the target's socket, for the ground truth.

The target's handler stamps a ``user_message`` when its event loop hands it over, after any
moment the loop was held: a reply's true server latency, as any client sees it, starts when the
message reached the server's socket. With ``--ground-truth``, the target asks Linux to stamp each
incoming packet (:mod:`loadtest.receive_stamps`) and reads through :class:`ArrivalStampedSocket`,
which keeps the kernel's stamp of the latest read; a message's ``arrived`` is that stamp when the
handler takes it. A read between the message's and the handler's moves the stamp later, never
earlier: the recorded server time can only come out shorter, so a client's measured overhead
against it can only come out larger.

asyncio's socket transport reads through its private ``_sock``; a transport without one (another
event loop, TLS) keeps the handler's stamp only, and so does a client across a network, where a
lost packet would make the kernel's stamp too early
(:func:`loadtest.receive_stamps.wants_kernel_stamps`).
"""

from __future__ import annotations

import socket
from time import perf_counter, time
from typing import Any

from loadtest.receive_stamps import STAMP_SPACE, arrival, enable, wants_kernel_stamps


class ArrivalStampedSocket:
    """A stand-in for a transport's socket that reads with ``recvmsg`` to keep the stamp.

    Attributes:
        latest_arrival: ``perf_counter`` moment the latest read's bytes reached the kernel
            (the read's own moment when the kernel gave no stamp); None before any read.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.latest_arrival: float | None = None

    def recv(self, size: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self._sock.recvmsg(size, STAMP_SPACE, flags)
        self._keep_stamp(ancillary)
        return data

    def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        view = memoryview(buffer)
        received, ancillary, _, _ = self._sock.recvmsg_into(
            [view[:size] if size else view], STAMP_SPACE, flags
        )
        self._keep_stamp(ancillary)
        return received

    def _keep_stamp(self, ancillary: list[tuple[int, int, bytes]]) -> None:
        read_at, read_at_realtime = perf_counter(), time()
        if ancillary:
            read_at = arrival(ancillary, read_at, read_at_realtime)
        self.latest_arrival = read_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def stamp_arrivals(transport: Any) -> ArrivalStampedSocket | None:
    """Have ``transport`` read through an :class:`ArrivalStampedSocket`; None where it cannot."""
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, ArrivalStampedSocket):
        return sock
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
        return None
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return None
    if not wants_kernel_stamps("auto", peer) or not enable(sock):
        return None
    stamped = ArrivalStampedSocket(sock)
    transport._sock = stamped
    return stamped
