"""The access-token value type, and the interface every source of them implements.

A token is shown by its :attr:`Token.fingerprint` only, never by its value: a ``repr`` ends up
in logs and tracebacks, and a log must never be enough to impersonate a user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret, safe to log: the first 8 hex of its SHA-256.

    Args:
        secret: a token, key or password.

    Returns:
        8 lowercase hex characters.
    """
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def jwt_expiry(value: str) -> float | None:
    """The ``exp`` claim of a JWT, read *without* verifying it.

    The load generator rarely holds the server's key, but it must still know when a token will
    be refused so it can refresh before connecting instead of burning a failed handshake.

    Args:
        value: a compact JWS (``header.payload.signature``) or any opaque token.

    Returns:
        ``exp`` as epoch seconds, or ``None`` when ``value`` is not a JWT or has no numeric
        ``exp``.
    """
    parts = value.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


@dataclass(frozen=True, repr=False)
class Token:
    """An access token and what we know about its lifetime.

    Args:
        value: the bearer token as sent to the server. Never shown by ``repr``.
        expires_at: epoch seconds after which the server refuses it, or ``None`` if unknown.
        refresh_token: the token to present to ``/auth/refresh``, if the source has one.
    """

    value: str = field(repr=False)
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(
        cls,
        value: str,
        refresh_token: str | None = None,
        expires_at: float | None = None,
    ) -> Token:
        """Build a token, taking the expiry from the JWT ``exp`` claim when there is one.

        Args:
            value: the access token.
            refresh_token: its refresh token, if any.
            expires_at: fallback expiry (e.g. from a login's ``expires_in``) for opaque tokens.

        Returns:
            A :class:`Token`; the JWT's own ``exp`` wins over ``expires_at``.
        """
        exp = jwt_expiry(value)
        return cls(value, exp if exp is not None else expires_at, refresh_token)

    @property
    def fingerprint(self) -> str:
        """8 hex characters identifying the token in logs without revealing it."""
        return fingerprint(self.value)

    def is_expired(self, now: float | None = None, skew_s: float = 5.0) -> bool:
        """Whether the server would refuse this token by now (or within ``skew_s``).

        Args:
            now: epoch seconds; ``None`` reads ``time.time()``. Pass it to test without a clock.
            skew_s: safety margin for clock skew and the time a handshake takes.

        Returns:
            ``True`` when the expiry is known and ``now + skew_s`` has reached it.
        """
        if self.expires_at is None:
            return False
        if now is None:
            now = time.time()
        return now + skew_s >= self.expires_at

    def __repr__(self) -> str:
        parts = [f"fingerprint={self.fingerprint!r}", f"expires_at={self.expires_at!r}"]
        if self.refresh_token is not None:
            parts.append(f"refresh_token={fingerprint(self.refresh_token)!r}")
        return f"Token({', '.join(parts)})"

    __str__ = __repr__


@runtime_checkable
class TokenSource(Protocol):
    """Hands out access tokens per simulated user; shared by all users of a process.

    Sources keep no per-user state (caching a user's current token is the caller's job) and
    never put a secret in an exception message or a ``repr``.
    """

    def token_for(self, user_index: int) -> Token:
        """The token user ``user_index`` should connect with.

        Raises:
            AuthError: no token can be obtained (one line, no secret).
        """
        ...

    def refresh(self, user_index: int, expired: Token) -> Token:
        """A replacement for ``expired``, which the server refused or is about to.

        Raises:
            AuthError: this source cannot produce a replacement.
        """
        ...
