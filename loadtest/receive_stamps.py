"""When the kernel received a socket's bytes, on the :func:`time.perf_counter` clock.

A stamp taken when our event loop gets round to reading a socket includes every moment that loop
was held meanwhile (a garbage collection, the window roll, a burst of other sockets read first):
the generator's own delay, reported as the server's latency. Linux stamps each incoming packet as
it enters the receive path (``SO_TIMESTAMPNS``) and hands the stamp to ``recvmsg`` as ancillary
data: with it, a frame's moment is when its bytes reached this machine, however late we read them.

TCP reports the stamp of the *last* packet a read consumed (packets coalesced in the receive queue
keep the newest stamp), so every frame in a read is stamped at or after its bytes arrived and never
after the read itself: the kernel stamp can only take away the generator's delay, never add one.
Arrived is not readable, though: after a lost packet the segments behind it wait for the
retransmission, and the read then reports their earlier stamp. Loopback loses nothing, so
``auto`` (:func:`wants_kernel_stamps`) asks for stamps only there.

The kernel stamps with CLOCK_REALTIME; a stamp becomes a ``perf_counter`` moment by subtracting its
age (``time.time_ns()`` at the read − the stamp) from ``perf_counter()`` at the read, the two clocks
read back to back (anything run between them, even a struct unpack just after a wake-up, was
measured adding ~30 µs). The age spans only the time the bytes waited, so NTP slewing the realtime
clock does not enter it; an age that is negative or absurd (the realtime clock stepped in between)
is ignored and the read keeps its own stamp.
"""

from __future__ import annotations

import ipaddress
import platform
import socket
import struct
import sys
from time import perf_counter, time_ns
from typing import Any
from urllib.parse import urlsplit

#: ``SO_TIMESTAMPNS`` (= ``SCM_TIMESTAMPNS``) where Linux's generic socket numbers apply; Python's
#: ``socket`` module does not name it. Other architectures (alpha, mips, parisc, sparc) number it
#: differently: no kernel stamps there.
_GENERIC_ARCHITECTURES = (
    "x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64",
    "ppc64le", "ppc64", "s390x", "loongarch64",
)  # fmt: skip
SO_TIMESTAMPNS: int | None = (
    35 if sys.platform == "linux" and platform.machine().lower() in _GENERIC_ARCHITECTURES else None
)
#: The kernel's ``struct timespec`` for this option: two native longs (8 bytes on 32-bit).
_TIMESPEC = struct.Struct("@ll")
_unpack_timespec = _TIMESPEC.unpack_from
#: Room for one ``struct timespec`` control message, as ``recvmsg_into``'s ``ancbufsize``.
STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if SO_TIMESTAMPNS is not None else 0
#: An age beyond this is a realtime clock step, not bytes that waited.
MAX_AGE_S = 60.0
#: ``--receive-clock`` values. ``auto``: the kernel's stamp for a target on this machine only.
CLOCKS = ("auto", "kernel", "read")


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to stamp ``sock``'s incoming bytes; whether it will.

    Best effort: a platform without ``SO_TIMESTAMPNS``, or a socket refusing it, keeps the read's
    own stamp.
    """
    if SO_TIMESTAMPNS is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8, ``::1`` or 127.x mapped into IPv6 (brackets allowed): the
    mapped form is what a dual-stack ``::`` socket reports as an IPv4 loopback peer."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def wants_kernel_stamps(requested: str, peer_host: str) -> bool:
    """Whether a plain-TCP connection to ``peer_host`` should read the kernel's stamps.

    ``auto`` only over loopback: across a network, a lost packet makes TCP hold the segments
    that arrived after it until the retransmission fills the gap, and a read then reports the
    stamp of those earlier segments (merged packets keep the stamp of the one merged in), so a
    frame delayed by the loss would be stamped as if it had not been: latency understated, in
    exactly the tail a user feels. Loopback neither loses nor reorders. ``kernel`` asks for the
    stamps anyway (a clean network, a generator close to its core); ``read`` never.
    """
    if requested == "auto":
        return is_loopback(peer_host)
    return requested == "kernel"


def run_clock(requested: str, target_url: str) -> str:
    """The clock a run's reads are expected on before any connection has said (``run.json``
    records the connections' own tally once there is one): ``"kernel"`` where asked for
    (``auto``: a loopback address or ``localhost``) and possible (Linux, plain
    ``ws://``/``http://``), else ``"read"``. A name that only resolves to loopback is
    expected on ``read`` here; its connections, which decide by the peer's address, correct
    that. Linux turns stamping on a moment after the first socket asks, so a run's very first
    reads may still carry the read's own moment."""
    parts = urlsplit(target_url)
    secure = parts.scheme.lower() in ("wss", "https")
    available = SO_TIMESTAMPNS is not None and not secure
    wanted = wants_kernel_stamps(requested, parts.hostname or "")
    return "kernel" if wanted and available else "read"


def arrival(
    ancillary: list[tuple[int, int, bytes]], read_at: float, read_at_realtime_ns: int
) -> float:
    """The ``perf_counter`` moment the kernel received a read's bytes.

    Args:
        ancillary: ``recvmsg_into``'s ancillary data for the read, not empty (the stamp, if
            any, first): a caller on the hot path tests for none itself, saving the call.
        read_at: ``perf_counter()`` taken just after the read returned.
        read_at_realtime_ns: ``time.time_ns()`` taken right beside ``read_at``: in integer
            nanoseconds, as the stamp is, because ``time.time()``'s float resolves only
            ~0.24 µs at today's epoch, which made gaps between close packets read negative.

    Returns:
        ``read_at`` less the age of the kernel's stamp; ``read_at`` itself when the data is
        not that stamp, or its age is negative or beyond :data:`MAX_AGE_S`.
    """
    # Per read on the hot path: no level check (only this option is on), no length check
    # (a short one fails the unpack).
    _, kind, data = ancillary[0]
    if kind != SO_TIMESTAMPNS:
        return read_at
    try:
        seconds, nanoseconds = _unpack_timespec(data)
    except struct.error:
        return read_at
    age = (read_at_realtime_ns - seconds * 1_000_000_000 - nanoseconds) * 1e-9
    if 0.0 < age < MAX_AGE_S:
        return read_at - age
    return read_at


class StampedSocket:
    """A stand-in for a socket that reads with ``recvmsg`` to keep the kernel's stamp, for code
    that reads through a socket object it does not own (asyncio's transport, ``websockets.sync``).

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
        read_at, read_at_realtime_ns = perf_counter(), time_ns()
        if ancillary:
            read_at = arrival(ancillary, read_at, read_at_realtime_ns)
            latest = self.latest_arrival
            # in TCP order, as the transport's stamped read keeps it (the conversion's jitter
            # must not put a later read's bytes before an earlier one's)
            if latest is not None and read_at < latest:
                read_at = latest
        self.latest_arrival = read_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
