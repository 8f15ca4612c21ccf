"""Where JWTs come from: one :class:`TokenSource` interface, four sources.

The CLI and the scenarios pick exactly one source with :func:`token_source_from_options`
(``--token``, ``--tokens-file``, ``--jwt-secret``, ``--login-file`` or their environment
variables). Locust users then call :meth:`TokenSource.token_for` once and
:meth:`TokenSource.refresh` when the token expires or the server rejects it.

Sources are shared by every user greenlet of a process, so they keep no per-user state: caching a
user's current token is the caller's job. They never put a secret in an exception message or a
``repr``; a token is shown by its :attr:`Token.fingerprint` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jwt

from loadtest.errors import AuthError, UsageError

ENV_TOKEN = "LOADTEST_TOKEN"
ENV_TOKENS_FILE = "LOADTEST_TOKENS_FILE"
ENV_JWT_SECRET = "LOADTEST_JWT_SECRET"
ENV_LOGIN_FILE = "LOADTEST_LOGIN_FILE"
ENV_API_KEY = "LOADTEST_API_KEY"

CHOOSE_ONE = "choose one of --token, --tokens-file, --jwt-secret, --login-file"


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
    """Hands out access tokens per simulated user; shared by all users of a process."""

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


def _read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines of a text file, stripped, with their 1-based numbers.

    Raises:
        UsageError: the file is missing or unreadable.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read {what} {path}: {reason}") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append((number, stripped))
    return lines


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
        lines = _read_lines(self.path, "tokens file")
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


def http_base_url(url: str) -> str:
    """The REST base URL for a target given as ws://, wss://, http:// or https://.

    Args:
        url: the ``--host`` value; REST and WebSocket share it.

    Returns:
        The same URL with ws → http, wss → https and no trailing slash.

    Raises:
        UsageError: any other scheme, or no host.
    """
    parts = urllib.parse.urlsplit(url.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"target URL must be ws://, wss://, http:// or https://: {url}")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def load_login_file(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read ``email,password`` lines (``--login-file``).

    The line is split on its *first* comma, so passwords may contain commas; whitespace around
    both fields is stripped. Blank lines and ``#`` comments are skipped.

    Args:
        path: the login file.

    Returns:
        ``(email, password)`` pairs in file order.

    Raises:
        UsageError: missing, unreadable or empty file, or a malformed line (named by number;
            the line itself is never echoed since it holds a password).
    """
    path = Path(path)
    credentials = []
    for number, line in _read_lines(path, "login file"):
        email, comma, password = line.partition(",")
        email, password = email.strip(), password.strip()
        if not comma or not email or not password:
            raise UsageError(f"{path}:{number}: expected 'email,password'")
        credentials.append((email, password))
    if not credentials:
        raise UsageError(f"login file has no credentials: {path}")
    return credentials


class AuthRefused(AuthError):
    """The auth endpoint answered 4xx: credentials, API key or refresh token not accepted.

    Callers can tell this apart from a plain :class:`AuthError` (server error, unreachable):
    retrying a refusal with backoff is pointless, retrying an outage may not be.

    Args:
        message: one line, no secret.
        status: the HTTP status.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LoginTokens:
    """Tokens from logging in each user against the target's REST API (``--login-file``).

    User ``i`` logs in with ``credentials[i % len(credentials)]``:
    ``POST {base}/auth/login {"email", "password"}`` →
    ``{"access_token", "refresh_token", "token_type", "expires_in"}`` (also accepted wrapped in a
    ``{"data": {...}}`` envelope). Refresh posts ``{"refresh_token"}`` to ``{base}/auth/refresh``
    and, when that is refused with a 4xx or there is no refresh token, logs in again. Server
    errors and network failures are not retried here: during a storm a retry belongs to the
    caller's backoff, not to a hidden second request.

    Requests go through ``urllib`` (cooperative under gevent) with proxies disabled: a load
    generator must hit the target directly whatever ``HTTP_PROXY`` says.

    Args:
        base_url: the target, ws:// wss:// http:// or https://.
        credentials: ``(email, password)`` pairs, e.g. from :func:`load_login_file`.
        api_key: sent as ``X-API-Key`` when given.
        timeout_s: per-request timeout.
        ssl_context: for https targets with a private CA (tests, staging).
        clock: epoch-seconds clock turning ``expires_in`` into an expiry.

    Raises:
        UsageError: no credentials or a bad URL.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Sequence[tuple[str, str]],
        api_key: str | None = None,
        timeout_s: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not credentials:
            raise UsageError("no login credentials given")
        self.base_url = http_base_url(base_url)
        self._credentials = tuple(credentials)
        self._api_key = api_key
        self.timeout_s = timeout_s
        self._clock = clock
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    def token_for(self, user_index: int) -> Token:
        """Log this user in.

        Raises:
            AuthRefused: login refused (4xx; the status is in the message and ``.status``).
            AuthError: the target failed or is unreachable.
        """
        email, password = self._credentials[user_index % len(self._credentials)]
        return self._post("/auth/login", {"email": email, "password": password}, f"login {email}")

    def refresh(self, user_index: int, expired: Token) -> Token:
        """Refresh with the refresh token, or log in again if that is refused.

        Raises:
            AuthError: refresh failed for a non-4xx reason, or the fallback login failed.
        """
        if expired.refresh_token:
            try:
                token = self._post(
                    "/auth/refresh", {"refresh_token": expired.refresh_token}, "refresh"
                )
            except AuthRefused:
                pass  # refresh token expired or revoked: a new login is the remedy
            else:
                if token.refresh_token is None:
                    # No rotation: the old refresh token stays valid.
                    token = Token(token.value, token.expires_at, expired.refresh_token)
                return token
        return self.token_for(user_index)

    def _post(self, path: str, body: dict[str, str], what: str) -> Token:
        """POST JSON and turn the answer into a :class:`Token`.

        Raises:
            AuthRefused: the server answered 4xx.
            AuthError: any other failure; one line with the status, no secret.
        """
        url = self.base_url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            message = f"{what} failed at {url}: HTTP {exc.code} {exc.reason}".rstrip()
            if 400 <= exc.code < 500:
                raise AuthRefused(message, exc.code) from None
            raise AuthError(message) from None
        except urllib.error.URLError as exc:
            raise AuthError(f"{what} failed at {url}: {_reason(exc.reason)}") from None
        except TimeoutError:
            raise AuthError(f"{what} failed at {url}: timed out after {self.timeout_s} s") from None
        except OSError as exc:
            raise AuthError(f"{what} failed at {url}: {_reason(exc)}") from None
        return self._parse(raw, url, what)

    def _parse(self, raw: bytes, url: str, what: str) -> Token:
        try:
            answer = json.loads(raw)
        except ValueError:
            raise AuthError(f"{what} at {url} answered with something other than JSON") from None
        if isinstance(answer, dict) and "access_token" not in answer:
            answer = answer.get("data", answer)
        access = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(access, str) or not access:
            raise AuthError(f"{what} at {url} answered without an access_token")
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = self._clock() + float(expires_in)
        return Token.parse(
            access, refresh if isinstance(refresh, str) and refresh else None, expires_at
        )

    def __repr__(self) -> str:
        return f"LoginTokens({self.base_url!r}, {len(self._credentials)} credentials)"


def _reason(reason: object) -> str:
    """A one-line description of a network failure."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return " ".join(str(reason).split()) or type(reason).__name__


def token_source_from_options(
    token: str | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    jwt_secret: str | None = None,
    login_file: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> TokenSource | None:
    """The one token source the options (or, failing them, the environment) ask for.

    Explicit options win over the environment entirely; among the environment variables
    (``LOADTEST_TOKEN``, ``LOADTEST_TOKENS_FILE``, ``LOADTEST_JWT_SECRET``,
    ``LOADTEST_LOGIN_FILE``) empty values count as unset, as CI systems often define them empty.

    Args:
        token: ``--token``.
        tokens_file: ``--tokens-file``.
        jwt_secret: ``--jwt-secret``.
        login_file: ``--login-file``.
        base_url: the target URL, needed by ``--login-file``.
        api_key: ``--api-key`` for login requests; falls back to ``LOADTEST_API_KEY``.
        environ: where to read the fallbacks (injectable for tests).

    Returns:
        A :class:`TokenSource`, or ``None`` when no source was asked for (unauthenticated
        targets, such as the reference target with auth off).

    Raises:
        UsageError: more than one source, a bad file, or a login file without a target URL.
    """
    explicit = {
        "token": token,
        "tokens_file": tokens_file,
        "jwt_secret": jwt_secret,
        "login_file": login_file,
    }
    chosen = {name: value for name, value in explicit.items() if value is not None}
    if not chosen:
        from_env = {
            "token": environ.get(ENV_TOKEN),
            "tokens_file": environ.get(ENV_TOKENS_FILE),
            "jwt_secret": environ.get(ENV_JWT_SECRET),
            "login_file": environ.get(ENV_LOGIN_FILE),
        }
        chosen = {name: value for name, value in from_env.items() if value}
        if len(chosen) > 1:
            raise UsageError(
                f"{CHOOSE_ONE} (several of {ENV_TOKEN}, {ENV_TOKENS_FILE}, "
                f"{ENV_JWT_SECRET}, {ENV_LOGIN_FILE} are set)"
            )
    if len(chosen) > 1:
        raise UsageError(CHOOSE_ONE)
    if not chosen:
        return None
    [(kind, value)] = chosen.items()
    if kind == "token":
        return StaticToken(str(value))
    if kind == "tokens_file":
        return TokenFile(value)
    if kind == "jwt_secret":
        return MintedTokens(str(value))
    if not base_url:
        raise UsageError("--login-file needs the target URL (--host) to log in against")
    if api_key is None:
        api_key = environ.get(ENV_API_KEY) or None
    return LoginTokens(base_url, load_login_file(value), api_key=api_key)
