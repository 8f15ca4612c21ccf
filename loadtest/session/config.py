"""Where a session connects and how a simulated client behaves (defaults: the client guide)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from loadtest.errors import UsageError
from loadtest.reconnect import ReconnectPolicy
from loadtest.transport import ConnectOptions

WS_PATH = "/ws/consultation"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The target's REST base and WebSocket URL, derived from one ``--host`` base URL."""

    http_base: str
    ws_base: str

    @classmethod
    def from_base_url(cls, base_url: str) -> Endpoints:
        """Accept ``ws://``, ``wss://``, ``http://`` or ``https://`` with an optional path prefix.

        Raises:
            UsageError: any other scheme, or no host.
        """
        parts = urlsplit(base_url)
        secure = {"ws": False, "http": False, "wss": True, "https": True}.get(parts.scheme)
        if secure is None or not parts.hostname:
            raise UsageError(
                f"--host must be a ws://, wss://, http:// or https:// URL, not {base_url!r}"
            )
        prefix = parts.path.rstrip("/")
        if prefix.endswith(WS_PATH):
            prefix = prefix[: -len(WS_PATH)]
        http = urlunsplit(("https" if secure else "http", parts.netloc, prefix, "", ""))
        ws = urlunsplit(("wss" if secure else "ws", parts.netloc, prefix + WS_PATH, "", ""))
        return cls(http_base=http, ws_base=ws)

    def ws_url(self, consultation_id: str, token: str | None) -> str:
        query = {"consultation_id": consultation_id}
        if token is not None:
            query["token"] = token
        return f"{self.ws_base}?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How a simulated client behaves; defaults follow the FitIQ client guide."""

    endpoints: Endpoints
    api_key: str | None = None
    id_key: str = "message_id"
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    stream_timeout_s: float = 60.0
    #: ``None``: create one per session with ``POST /consultations``, as the app does.
    consultation_id: str | None = None
    consultation_type: str = "nutrition"
    heartbeat_interval_s: float | None = 30.0
    pong_timeout_s: float = 10.0
    max_missed_pongs: int = 2
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    #: Resend a user message whose stream was cut by a drop, once, after reconnecting.
    retry_interrupted: bool = False
    #: ``--seed``: with the user index, makes each user's reconnect jitter reproducible.
    seed: int = 0
