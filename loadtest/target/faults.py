"""Fault kinds, their value syntax, and the per-stream dice roll.

A fault is written ``KIND=VALUE`` on the command line (``--fault drop=0.1``) and as
``{"value": "0.1"}`` through the admin API, so both share :func:`parse_fault_value`. Values are
a *rate* (probability per stream, per handshake or per app-level ping, ``0``–``1`` or ``N%``),
optionally followed by ``:`` and a size; ``restart`` alone is a *schedule* and ``rate_limit`` a
*limit* (``N/S[:CODE]``: more than N user messages in S seconds on one connection are refused).
Pure: no I/O, the random source and the clock are passed in, so tests can pin every decision.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

# kind -> (what it does, value syntax). The single place a kind is declared: the CLI help,
# the docs table and the admin API all read it.
FAULT_KINDS: dict[str, tuple[str, str]] = {
    "drop": ("close the socket mid-stream with code 1011", "RATE"),
    "reset": ("abort the TCP connection mid-stream (RST, no close frame)", "RATE"),
    "stall": ("pause a stream for MS milliseconds mid-stream", "RATE:MS"),
    "error": ("send an `error` frame instead of a reply", "RATE"),
    "lose": ("lose the `user_message`: no reply at all (no start, chunk or complete)", "RATE"),
    "refuse": ("refuse the WebSocket handshake with HTTP 503", "RATE"),
    "slow_handshake": ("delay the handshake answer by MS milliseconds", "RATE:MS"),
    "swallow_pong": ("answer no app-level `ping` with a `pong`", "RATE"),
    "malformed": ("replace one mid-stream chunk with invalid JSON text", "RATE"),
    "binary": ("send one mid-stream chunk as a binary frame", "RATE"),
    "oversized": ("replace one mid-stream chunk by one with BYTES of content", "RATE[:BYTES]"),
    "chunk_before_start": ("send the first chunk before `ai_message_start`", "RATE"),
    "duplicate_complete": ("send `ai_message_complete` twice", "RATE"),
    "expire_token": ("close mid-stream with 4001 \"token expired\"", "RATE"),
    "restart": ("every EVERY_S seconds drop all connections (1012) and refuse (503) "
                "for REFUSE_S seconds", "EVERY_S:REFUSE_S"),
    "rate_limit": (
        "refuse a user message beyond N in S seconds on one connection with an "
        "`error` frame (code `rate_limited`); with CODE, then close with CODE",
        "N/S[:CODE]",
    ),
}

DEFAULT_OVERSIZED_BYTES = 1024 * 1024  # content alone at websockets' default max_size
#: The ``code`` of the target's rate-limit ``error`` frame. The client guide documents no error
#: codes at all (its error frame is ``type`` + ``content``); this follows the target's own
#: ``code`` names (``busy``, ``overloaded``, ``injected_error``).
RATE_LIMITED = "rate_limited"
#: Close codes a server may not send (RFC 6455 §7.4.1: reserved for local use).
_UNSENDABLE_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})
# Precedence when several hit. A lost message has no reply for another fault to strike.
TERMINAL_FAULTS = ("lose", "error", "drop", "reset", "expire_token")


@dataclass(frozen=True)
class Fault:
    """One configured fault: its kind and parsed value.

    ``text`` is the canonical value, as shown by ``GET /admin/faults`` and re-parsable.
    """

    kind: str
    rate: float = 0.0
    ms: float = 0.0
    size: int = 0
    every_s: float = 0.0
    refuse_s: float = 0.0
    #: ``rate_limit``: at most ``limit`` user messages per ``window_s`` seconds; a refused one
    #: is followed by a close with ``close_code`` unless it is 0.
    limit: int = 0
    window_s: float = 0.0
    close_code: int = 0

    @property
    def text(self) -> str:
        """The value in the syntax it was parsed from (canonical form)."""
        if self.kind == "restart":
            return f"{_num(self.every_s)}:{_num(self.refuse_s)}"
        if self.kind == "rate_limit":
            close = f":{self.close_code}" if self.close_code else ""
            return f"{self.limit}/{_num(self.window_s)}{close}"
        if self.kind in ("stall", "slow_handshake"):
            return f"{_num(self.rate)}:{_num(self.ms)}"
        if self.kind == "oversized":
            return f"{_num(self.rate)}:{self.size}"
        return _num(self.rate)

    def hits(self, rng: random.Random) -> bool:
        """Roll the dice once: whether this occurrence is faulted."""
        return self.rate >= 1.0 or (self.rate > 0.0 and rng.random() < self.rate)


def _num(value: float) -> str:
    return f"{value:g}"


def _rate(text: str) -> float:
    text = text.strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"rate {text!r} is not a number (use 0.1 or 10%)") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate {text!r} is outside 0..1")
    return rate


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{what} {text!r} is negative")
    return value


def parse_fault_value(kind: str, value: object) -> Fault:
    """Parse one fault value.

    Args:
        kind: a key of :data:`FAULT_KINDS`.
        value: the value text (``"0.1"``, ``"5%"``, ``"0.05:2000"``) or a number for rates.

    Raises:
        ValueError: one line naming the kind and the expected syntax.
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    syntax = FAULT_KINDS[kind][1]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{kind}: value must be a string or number ({kind}={syntax})")
    parts = str(value).split(":")
    try:
        if kind == "restart":
            if len(parts) != 2:
                raise ValueError("expected two numbers")
            every_s = _positive(parts[0], "EVERY_S")
            if every_s <= 0:
                raise ValueError("EVERY_S must be > 0")
            return Fault(kind, every_s=every_s, refuse_s=_positive(parts[1], "REFUSE_S"))
        if kind == "rate_limit":
            return _rate_limit(parts)
        if kind in ("stall", "slow_handshake"):
            if len(parts) != 2:
                raise ValueError("expected RATE:MS")
            return Fault(kind, rate=_rate(parts[0]), ms=_positive(parts[1], "MS"))
        if kind == "oversized":
            if len(parts) > 2:
                raise ValueError("expected RATE or RATE:BYTES")
            size = int(_positive(parts[1], "BYTES")) if len(parts) == 2 else None
            return Fault(kind, rate=_rate(parts[0]), size=size or DEFAULT_OVERSIZED_BYTES)
        if len(parts) != 1:
            raise ValueError("expected one rate")
        return Fault(kind, rate=_rate(parts[0]))
    except ValueError as exc:
        raise ValueError(f"{kind}={value}: {exc} (syntax: {kind}={syntax})") from None


def _rate_limit(parts: list[str]) -> Fault:
    if len(parts) > 2:
        raise ValueError("expected N/S or N/S:CODE")
    count, slash, window = parts[0].partition("/")
    if not slash:
        raise ValueError("expected N/S (messages per seconds)")
    try:
        limit = int(count)
    except ValueError:
        raise ValueError(f"N {count!r} is not a whole number") from None
    if limit < 1:
        raise ValueError("N must be >= 1")
    window_s = _positive(window, "S")
    if window_s <= 0:
        raise ValueError("S must be > 0")
    close_code = 0
    if len(parts) == 2:
        try:
            close_code = int(parts[1])
        except ValueError:
            raise ValueError(f"CODE {parts[1]!r} is not a close code") from None
        if not 1000 <= close_code <= 4999 or close_code in _UNSENDABLE_CLOSE_CODES:
            raise ValueError(f"CODE {close_code} is not a close code a server may send")
    return Fault("rate_limit", limit=limit, window_s=window_s, close_code=close_code)


def admit_message(recent: deque[float], now: float, limit: int, window_s: float) -> bool:
    """Whether a connection may have one more user message at ``now`` (a sliding window).

    Args:
        recent: the moments of the messages this connection was allowed in the last
            ``window_s`` seconds, oldest first; updated in place (refused ones are not kept,
            so a client that slows down is served again once the window has moved on).
        now: the moment the message arrived (seconds, monotonic).
        limit: messages allowed per window.
        window_s: the window's length.

    Returns:
        ``True`` (and ``now`` remembered) if fewer than ``limit`` messages were allowed in
        ``(now - window_s, now]``; ``False`` if this one is over the limit.
    """
    horizon = now - window_s
    while recent and recent[0] <= horizon:
        recent.popleft()
    if len(recent) >= limit:
        return False
    recent.append(now)
    return True


def parse_fault_option(text: str) -> Fault:
    """Parse a ``KIND=VALUE`` command-line spec (``drop=0.1``). Raises ``ValueError``."""
    kind, sep, value = text.partition("=")
    if not sep or not value.strip():
        raise ValueError(f"{text!r} is not KIND=VALUE (e.g. drop=0.1, stall=0.05:2000)")
    return parse_fault_value(kind.strip(), value.strip())


@dataclass(frozen=True)
class StreamFaults:
    """What goes wrong with one reply, decided before its first frame.

    At most one *terminal* fault (it ends the stream); the others combine.
    """

    terminal: str | None = None
    stall_ms: float = 0.0
    malformed: bool = False
    binary: bool = False
    oversized_bytes: int = 0
    chunk_before_start: bool = False
    duplicate_complete: bool = False

    @property
    def kinds(self) -> list[str]:
        """The names of the faults applied, for ground truth and counters."""
        names = [self.terminal] if self.terminal else []
        flags = (
            ("stall", self.stall_ms > 0),
            ("malformed", self.malformed),
            ("binary", self.binary),
            ("oversized", self.oversized_bytes > 0),
            ("chunk_before_start", self.chunk_before_start),
            ("duplicate_complete", self.duplicate_complete),
        )
        return names + [name for name, on in flags if on]


NO_STREAM_FAULTS = StreamFaults()


def roll_stream_faults(faults: Mapping[str, Fault], rng: random.Random) -> StreamFaults:
    """Decide which faults hit one stream.

    Terminal faults are rolled in the order of :data:`TERMINAL_FAULTS` and the first hit wins,
    so ``error=1`` with ``drop=1`` always gives an error frame. Only configured kinds roll, so
    adding a kind never changes the dice of a seeded run that does not use it.
    """
    if not faults:
        return NO_STREAM_FAULTS
    terminal = next(
        (kind for kind in TERMINAL_FAULTS if kind in faults and faults[kind].hits(rng)), None
    )

    def hit(kind: str) -> Fault | None:
        fault = faults.get(kind)
        return fault if fault is not None and fault.hits(rng) else None

    stall = hit("stall")
    oversized = hit("oversized")
    return StreamFaults(
        terminal=terminal,
        stall_ms=stall.ms if stall else 0.0,
        malformed=hit("malformed") is not None,
        binary=hit("binary") is not None,
        oversized_bytes=oversized.size if oversized else 0,
        chunk_before_start=hit("chunk_before_start") is not None,
        duplicate_complete=hit("duplicate_complete") is not None,
    )
