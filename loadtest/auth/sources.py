"""The token sources that need no server: one given token, a file of them, or minted ones."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt

from loadtest.auth.lines import read_lines
from loadtest.auth.token import Token, fingerprint
from loadtest.errors import AuthError, UsageError


class StaticToken:
    """One token for every user (``--token``); it cannot be refreshed.

    Args:
        token: the bearer token.

    Raises:
        UsageError: the token is empty.
    """

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token:
            raise UsageError("the token given by --token / LOADTEST_TOKEN is empty")
        self._token = Token.parse(token)

    def token_for(self, user_index: int) -> Token:
        """The same token, whoever asks."""
        return self._token

    def refresh(self, user_index: int, expired: Token) -> Token:
        """Always fails: there is nothing to refresh a single given token from.

        Raises:
            AuthError: always; the message suggests a refreshable source.
        """
        raise AuthError(
            f"cannot refresh a static token ({expired.fingerprint}); "
            "use --tokens-file, --jwt-secret or --login-file for long runs"
        )

    def __repr__(self) -> str:
        return f"StaticToken({self._token.fingerprint})"


class TokenFile:
    """Tokens read from a file, one per line, handed out round-robin by user index.

    Blank lines and lines starting with ``#`` are skipped. The file is read once, here, so a
    bad file fails before any user starts.

    Args:
        path: the tokens file (``--tokens-file``).
        clock: epoch-seconds clock used by :meth:`refresh` to skip expired tokens.

    Raises:
        UsageError: the file is missing, unreadable or holds no token.
    """

    def __init__(
        self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        lines = read_lines(self.path, "tokens file")
        if not lines:
            raise UsageError(f"tokens file has no tokens: {self.path}")
        self._tokens = tuple(Token.parse(line) for _, line in lines)
        # First position of each value, so refresh finds the refused token in O(1).
        self._position: dict[str, int] = {}
        for position, token in enumerate(self._tokens):
            self._position.setdefault(token.value, position)

    def __len__(self) -> int:
        return len(self._tokens)

    def token_for(self, user_index: int) -> Token:
        """Token number ``user_index`` modulo the number of tokens."""
        return self._tokens[user_index % len(self._tokens)]

    def refresh(self, user_index: int, expired: Token) -> Token:
        """The next token in the file after ``expired`` that is different and not expired.

        Scanning from the refused token's own position (not the user's) spreads users who
        refresh over the remaining tokens instead of piling them onto one.

        Raises:
            AuthError: every other token in the file has expired too.
        """
        n = len(self._tokens)
        position = self._position.get(expired.value)
        start = user_index if position is None else position + 1
        now = self._clock()
        for offset in range(n):
            candidate = self._tokens[(start + offset) % n]
            if candidate.value != expired.value and not candidate.is_expired(now):
                return candidate
        raise AuthError(f"no unexpired token left in {self.path} ({n} tokens)")

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, {len(self._tokens)} tokens)"


class MintedTokens:
    """HS256 tokens minted per user with the server's shared secret (``--jwt-secret``).

    Claims: ``sub`` = ``subject_prefix + str(user_index)``, ``iat``, ``exp`` = ``iat + ttl_s``,
    ``type`` = ``"access"``, then ``claims`` merged over them (so a target that wants ``aud`` or
    ``user_id`` gets it). Minting costs tens of microseconds, so refresh simply re-mints.

    Args:
        secret: the HMAC key the target verifies with.
        ttl_s: lifetime of each token; short values exercise refresh in soak tests.
        subject_prefix: makes each user a distinct account on the server.
        claims: extra claims, overriding the defaults above.
        clock: epoch-seconds clock (injectable for tests).

    Raises:
        UsageError: empty secret or non-positive ``ttl_s``.
    """

    def __init__(
        self,
        secret: str,
        ttl_s: float = 900,
        subject_prefix: str = "loadtest-user-",
        claims: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise UsageError("the secret given by --jwt-secret / LOADTEST_JWT_SECRET is empty")
        if not ttl_s > 0:
            raise UsageError(f"token lifetime must be > 0 s, got {ttl_s}")
        self._secret = secret
        self.ttl_s = ttl_s
        self.subject_prefix = subject_prefix
        self.claims = dict(claims or {})
        self._clock = clock

    def token_for(self, user_index: int) -> Token:
        """A freshly minted token for this user."""
        now = int(self._clock())
        exp = int(now + self.ttl_s)
        payload: dict[str, Any] = {
            "sub": f"{self.subject_prefix}{user_index}",
            "iat": now,
            "exp": exp,
            "type": "access",
            **self.claims,
        }
        return Token.parse(jwt.encode(payload, self._secret, algorithm="HS256"))

    def refresh(self, user_index: int, expired: Token) -> Token:
        """Mint a new token; minting cannot fail once the secret is known."""
        return self.token_for(user_index)

    def __repr__(self) -> str:
        return f"MintedTokens(secret={fingerprint(self._secret)}, ttl_s={self.ttl_s})"
