"""What a session reports, and why a session ends."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from loadtest.errors import LoadtestError
from loadtest.protocol import Stream, ViolationKind


class SessionObserver(Protocol):
    """Everything a session reports. Implementations record; they must not block."""

    def consultation_ready(self, consultation_id: str) -> None: ...

    def connected(
        self, connect_ms: float, reconnect_ms: float | None, receive_clock: str
    ) -> None:
        """A handshake succeeded; ``receive_clock`` is how this connection's reads are
        stamped (``kernel`` or ``read``, :mod:`loadtest.receive_stamps`)."""

    def connect_failed(self, kind: str) -> None: ...

    def disconnected(self, close_code: int) -> None: ...

    def connection_closed(self, lifetime_s: float, initiator: str, close_code: int) -> None: ...

    def stream_started(self) -> None: ...

    def stream_finished(self, stream: Stream) -> None: ...

    def violation(self, kind: ViolationKind) -> None: ...

    def error_frame(self, code: str) -> None: ...

    def template_created(self) -> None: ...

    def ping_sent(self) -> None: ...

    def pong_received(self, rtt_ms: float) -> None: ...

    def pong_missed(self) -> None: ...

    def reconnect_attempt(self) -> None: ...

    def reconnect_gave_up(self) -> None: ...

    def token_refreshed(self) -> None: ...

    def rest_call(self, name: str, elapsed_ms: float, error: str | None) -> None: ...


class EndKind(StrEnum):
    """Why a session can go on no more."""

    #: The user left (close 1000) or vanished (TCP reset): its own doing.
    CLOSED = "closed"
    DROPPED = "dropped"
    #: The target refused who we are: 401/403 after one refresh, 404 for the consultation,
    #: a refused login or token refresh. Retrying with the same credentials is pointless,
    #: so the user stops for the rest of the run.
    AUTH = "auth"
    #: Reconnect attempts used up, or a handshake status the policy does not retry.
    GAVE_UP = "gave_up"
    #: The server closed normally (1000): it meant it.
    SERVER_CLOSED = "server_closed"
    #: ``POST /consultations`` failed for a reason other than auth.
    REST_FAILED = "rest_failed"


@dataclass(frozen=True, slots=True)
class EndReason:
    """How a session ended.

    Attributes:
        kind: the class of ending.
        status: what the target answered, as counted: ``"401"``, ``"404"``, ``"close 4001"``,
            ``"POST /auth/login 401"``… ``None`` when the session ended by itself.
        detail: one line for humans, never a secret.
    """

    kind: EndKind
    detail: str
    status: str | None = None

    @property
    def is_auth_giveup(self) -> bool:
        return self.kind is EndKind.AUTH

    def __str__(self) -> str:
        return self.detail


class SessionEnded(LoadtestError):
    """The session cannot go on: reconnects exhausted, auth refused, or it was closed."""

    def __init__(self, reason: EndReason) -> None:
        super().__init__(f"session ended: {reason.detail}")
        self.reason = reason
