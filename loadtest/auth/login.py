"""Tokens from logging each user in against the target's REST API (``--login-file``).

Logins and refreshes go through the one :class:`~loadtest.rest.RestClient`, so ``--ca-file``,
``--insecure``, the timeout and the no-proxy rule apply to them exactly as to the WebSocket.
A failure is both an :class:`~loadtest.errors.AuthError` (there is no token) and a
:class:`~loadtest.rest.RestError` (``call``, ``kind``, ``elapsed_ms`` to count it by). The
credential is named by its place in the login file, never by its email: an email address in
``locust.log`` is personal data the run directory has no business keeping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.auth.lines import read_lines
from loadtest.auth.token import Token, fingerprint
from loadtest.errors import AuthError, UsageError
from loadtest.rest import (
    DEFAULT_TIMEOUT_S,
    RestClient,
    RestError,
    http_base_url,
    target_address,
)

LOGIN_PATH = "/auth/login"
REFRESH_PATH = "/auth/refresh"


class LoginFailed(RestError, AuthError):
    """Login or refresh failed for a reason other than a refusal: a 5xx, unreachable, timeout,
    TLS, or an answer without an ``access_token``. Retrying it later may work."""


class AuthRefused(LoginFailed):
    """The auth endpoint answered 4xx: credentials, API key or refresh token not accepted.

    Retrying a refusal with backoff is pointless; :attr:`status` is the HTTP status.
    """


@dataclass(frozen=True, repr=False)
class Credential:
    """One ``email,password`` account, and how messages may name it.

    Args:
        email: the login; personal data, so never shown.
        password: never shown.
        name: how errors and logs refer to it, e.g. ``logins.csv:3``.
    """

    email: str = field(repr=False)
    password: str = field(repr=False)
    name: str = ""

    def __repr__(self) -> str:
        return f"Credential({self.name or fingerprint(self.email)})"


def load_login_file(path: str | os.PathLike[str]) -> list[Credential]:
    """Read ``email,password`` lines (``--login-file``).

    The line is split on its *first* comma, so passwords may contain commas; whitespace around
    both fields is stripped. Blank lines and ``#`` comments are skipped.

    Args:
        path: the login file.

    Returns:
        One :class:`Credential` per line, in file order, named ``<file name>:<line>``.

    Raises:
        UsageError: missing, unreadable or empty file, or a malformed line (named by number;
            the line itself is never echoed since it holds a password).
    """
    path = Path(path)
    credentials = []
    for number, line in read_lines(path, "login file"):
        email, comma, password = line.partition(",")
        email, password = email.strip(), password.strip()
        if not comma or not email or not password:
            raise UsageError(f"{path}:{number}: expected 'email,password'")
        credentials.append(Credential(email, password, f"{path.name}:{number}"))
    if not credentials:
        raise UsageError(f"login file has no credentials: {path}")
    return credentials


class LoginTokens:
    """Tokens from logging in each user against the target's REST API (``--login-file``).

    User ``i`` logs in with ``credentials[i % len(credentials)]``:
    ``POST {base}/auth/login {"email", "password"}`` →
    ``{"access_token", "refresh_token", "token_type", "expires_in"}`` (also accepted wrapped in a
    ``{"data": {...}}`` envelope). Refresh posts ``{"refresh_token"}`` to ``{base}/auth/refresh``
    and, when that is refused with a 4xx or there is no refresh token, logs in again. Server
    errors and network failures are not retried here: during a storm a retry belongs to the
    caller's backoff, not to a hidden second request.

    Args:
        base_url: the target, ws:// wss:// http:// or https://.
        credentials: :class:`Credential` objects (from :func:`load_login_file`) or plain
            ``(email, password)`` pairs, then named ``credential N`` in errors.
        api_key: sent as ``X-API-Key`` when given.
        timeout_s: per-call timeout, used only to build a client when ``rest`` is not given.
        rest: the process's REST client (TLS trust, timeout); shared with the session.
        clock: epoch-seconds clock turning ``expires_in`` into an expiry.

    Raises:
        UsageError: no credentials or a bad URL.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Sequence[Credential | tuple[str, str]],
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        rest: RestClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not credentials:
            raise UsageError("no login credentials given")
        self.base_url = http_base_url(base_url)
        self._credentials = tuple(
            given if isinstance(given, Credential) else Credential(*given, f"credential {n}")
            for n, given in enumerate(credentials, start=1)
        )
        self._api_key = api_key
        self._rest = rest if rest is not None else RestClient(timeout_s)
        self._clock = clock

    @property
    def rest(self) -> RestClient:
        """The client logins and refreshes go through."""
        return self._rest

    def token_for(self, user_index: int) -> Token:
        """Log this user in.

        Raises:
            AuthRefused: login refused (4xx; ``kind`` and ``status`` say which).
            LoginFailed: the target failed, is unreachable, or answered without a token.
        """
        credential = self._credentials[user_index % len(self._credentials)]
        body = {"email": credential.email, "password": credential.password}
        return self._post(LOGIN_PATH, body, f"as {credential.name}")

    def refresh(self, user_index: int, expired: Token) -> Token:
        """Refresh with the refresh token, or log in again if that is refused.

        Raises:
            LoginFailed: refresh failed for a non-4xx reason, or the fallback login failed
                (an :class:`AuthRefused` if that login was refused).
        """
        if expired.refresh_token:
            try:
                token = self._post(
                    REFRESH_PATH,
                    {"refresh_token": expired.refresh_token},
                    f"refresh token {fingerprint(expired.refresh_token)}",
                )
            except AuthRefused:
                pass  # refresh token expired or revoked: a new login is the remedy
            else:
                if token.refresh_token is None:
                    # No rotation: the old refresh token stays valid.
                    token = Token(token.value, token.expires_at, expired.refresh_token)
                return token
        return self.token_for(user_index)

    def _post(self, path: str, body: dict[str, str], who: str) -> Token:
        """POST JSON and turn the answer into a :class:`Token`.

        Raises:
            AuthRefused: the server answered 4xx.
            LoginFailed: any other failure; one line, no secret, no email.
        """
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        try:
            answer = self._rest.post_json(self.base_url, path, body, headers)
        except RestError as exc:
            refused = exc.status is not None and 400 <= exc.status < 500
            detail = f"{exc.detail}; {who}" if exc.detail else who
            raise (AuthRefused if refused else LoginFailed)(
                exc.call, exc.kind, exc.elapsed_ms, exc.where, detail
            ) from None
        token = self._token_from(answer.body)
        if token is None:
            raise LoginFailed(
                f"POST {path}", "invalid", answer.elapsed_ms, target_address(self.base_url),
                f"no access_token in the answer; {who}",
            )  # fmt: skip
        return token

    def _token_from(self, answer: Any) -> Token | None:
        if isinstance(answer, dict) and "access_token" not in answer:
            answer = answer.get("data", answer)
        access = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(access, str) or not access:
            return None
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = self._clock() + float(expires_in)
        return Token.parse(
            access, refresh if isinstance(refresh, str) and refresh else None, expires_at
        )

    def __repr__(self) -> str:
        # The address only: a base URL may carry user:password@.
        where = target_address(self.base_url)
        return f"LoginTokens({where!r}, {len(self._credentials)} credentials)"
