"""Identity for the target: user ids, HS256 tokens and self-verifying consultation ids.

Consultation ids carry their owner and an HMAC, so any server process (``--processes N``) and
any later handshake can tell *unknown* (404 in strict mode) from *someone else's* (403) without
shared state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"


class TokenRejected(Exception):
    """A token failed verification; ``str()`` is a short reason safe to send back."""


def user_id_for(email: str) -> str:
    """A stable user id derived from an email address (same email, same id)."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"user_{digest[:16]}"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str

    def as_response(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "user_id": self.user_id,
        }


class Authority:
    """Mints and verifies tokens and consultation ids with one secret.

    Args:
        secret: the HS256 key; never logged.
        token_ttl: access token lifetime, seconds.
        refresh_ttl: refresh token lifetime, seconds.
    """

    def __init__(self, secret: str, token_ttl: int, refresh_ttl: int) -> None:
        self._secret = secret
        self._key = secret.encode()
        self.token_ttl = token_ttl
        self.refresh_ttl = refresh_ttl

    def mint_pair(self, user_id: str) -> TokenPair:
        now = int(time.time())
        access = jwt.encode(
            {"sub": user_id, "iat": now, "exp": now + self.token_ttl, "type": "access"},
            self._secret, algorithm=ALGORITHM,
        )
        refresh = jwt.encode(
            {"sub": user_id, "iat": now, "exp": now + self.refresh_ttl, "type": "refresh",
             "jti": secrets.token_hex(8)},
            self._secret, algorithm=ALGORITHM,
        )
        return TokenPair(access, refresh, self.token_ttl, user_id)

    def verify(self, token: str, token_type: str = "access") -> dict[str, object]:
        """Verify a token and return its claims.

        ``sub`` is required; ``exp`` is checked when present. Tokens without a ``type`` claim
        (minted by a client holding the shared secret) count as access tokens.

        Raises:
            TokenRejected: "token expired", "invalid token", or "wrong token type".
        """
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.PyJWTError:
            raise TokenRejected("invalid token") from None
        if claims.get("type", "access") != token_type:
            raise TokenRejected("wrong token type")
        if not isinstance(claims.get("sub"), str):
            raise TokenRejected("invalid token")
        return claims

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:16]

    def new_consultation_id(self, owner: str) -> str:
        body = f"{owner}.{secrets.token_hex(6)}"
        return f"{body}.{self._mac(body)}"

    def consultation_owner(self, consultation_id: str) -> str | None:
        """The owner a consultation id was minted for, or None if this server never minted it."""
        body, _, mac = consultation_id.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            return None
        return body.partition(".")[0]
