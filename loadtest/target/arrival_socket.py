"""When a client's bytes reached the target's socket, for the ground truth.

The target's handler stamps a ``user_message`` when its event loop hands it over, after any
moment the loop was held: a reply's true server latency, as any client sees it, starts when the
message reached the server's socket. With ``--ground-truth``, the target asks Linux to stamp each
incoming packet and reads through a :class:`loadtest.receive_stamps.StampedSocket`, which keeps
the kernel's stamp of the latest read; a message's ``arrived`` is that stamp when the handler
takes it. A read between the message's and the handler's moves the stamp later, never
earlier: the recorded server time can only come out shorter, so a client's measured overhead
against it can only come out larger.

asyncio's socket transport reads through its private ``_sock``; a transport without one (another
event loop, TLS) keeps the handler's stamp only, and so does a client across a network, where a
lost packet would make the kernel's stamp too early
(:func:`loadtest.receive_stamps.wants_kernel_stamps`).
"""

from __future__ import annotations

import socket
from typing import Any

from loadtest.receive_stamps import StampedSocket, enable, wants_kernel_stamps


def stamp_arrivals(transport: Any) -> StampedSocket | None:
    """Have ``transport`` read through an :class:`StampedSocket`; None where it cannot."""
    sock = getattr(transport, "_sock", None)
    if isinstance(sock, StampedSocket):
        return sock
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
        return None
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return None
    if not wants_kernel_stamps("auto", peer) or not enable(sock):
        return None
    stamped = StampedSocket(sock)
    transport._sock = stamped
    return stamped
