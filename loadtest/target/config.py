"""Everything one target run is configured with, parsed once, immutable afterwards.

Secrets (JWT secret, API key) are excluded from ``repr`` so that a config can be logged or shown
in an error without leaking them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.target.faults import Fault
from loadtest.target.profiles import FixedProfile, LatencyProfile

ID_KEYS = ("message_id", "messageId")
BUSY_POLICIES = ("queue", "reject")


@dataclass(frozen=True)
class ServerConfig:
    """One target run.

    Attributes:
        host, port: where to listen; port 0 picks a free one.
        profile: the latency model of replies.
        faults: fault kind -> fault, as set at start (the admin API changes a live copy).
        ground_truth: JSON-lines file of server-side timings, or None.
        processes: server processes sharing the port through SO_REUSEPORT.
        strict: refuse unknown consultation ids with 404 (lenient accepts any id).
        id_key: the id field name in frames the server sends (the guide's JSON says
            ``message_id``, its Swift model ``messageId``); incoming frames may use either.
        busy: what a user_message arriving mid-reply gets: ``queue`` or ``reject``.
        template_share: probability that a completed reply is followed by template_created.
        ws_ping_interval, ws_ping_timeout: WebSocket-level keepalive in seconds (0 = off).
        token_ttl, refresh_ttl: lifetimes of minted access and refresh tokens, seconds.
        enforce_token_expiry: close a session with 4001 when its access token expires.
        jwt_secret: HS256 secret; random per run unless given.
        api_key: the required X-API-Key, or None for no check.
        seed: seeds the random choices (per process: seed + process index).
        tls_cert, tls_key: PEM files; when set the port speaks TLS (https, wss).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    profile: LatencyProfile = field(default_factory=FixedProfile)
    faults: dict[str, Fault] = field(default_factory=dict)
    ground_truth: Path | None = None
    processes: int = 1
    strict: bool = False
    id_key: str = "message_id"
    busy: str = "queue"
    template_share: float = 0.0
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    token_ttl: int = 900
    refresh_ttl: int = 86400
    enforce_token_expiry: bool = False
    jwt_secret: str = field(default="", repr=False)
    api_key: str | None = field(default=None, repr=False)
    seed: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http`` (the WebSocket URL is ``wss``/``ws`` alike)."""
        return "https" if self.tls_cert else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server TLS context, or None without TLS. Raises ``OSError``/``ssl.SSLError``."""
        if self.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context
