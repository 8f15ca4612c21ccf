"""One HTTP client for every REST call the tool makes: consultations, login, refresh, admin.

A load generator must reach the target it was pointed at, the way it was told to, and say
precisely why when it cannot. So every call here:

- verifies TLS exactly as the WebSocket does (:func:`loadtest.transport.build_ssl_context`:
  ``--ca-file`` trusts a private CA, ``--insecure`` trusts anything), so REST and WebSocket
  never disagree about a certificate;
- ignores ``HTTP(S)_PROXY`` from the environment (a CI runner's proxy would put its own
  latency into every measurement, or refuse loopback targets outright);
- never follows a redirect (urllib would re-send ``Authorization`` and ``X-API-Key`` to
  whatever host the ``Location`` names);
- is bounded by one timeout for the whole call, not per socket read, so a server that drips
  one byte a second cannot hold a user for ever;
- fails with one exception, :class:`RestError`, classified the same way handshake failures are
  (``"401"``, ``"503"``, ``"timeout"``, ``"refused"``, ``"tls"``, ``"dns"``, ``"reset"``,
  ``"invalid"``) so the session can count ``rest_failures`` by ``"{call} {kind}"``.

It is ``urllib`` over the standard sockets, which Locust has gevent-patched by the time any
user runs, so a call blocks only its own greenlet.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import gevent

from loadtest.errors import LoadtestError, UsageError
from loadtest.transport import ConnectOptions, build_ssl_context, classify_network_failure

DEFAULT_TIMEOUT_S = 10.0


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


class RestError(LoadtestError):
    """A REST call failed: refused with a status, unreachable, too slow, or answered nonsense.

    Args:
        call: method and path as counted, e.g. ``"POST /consultations"`` (never the host or
            query, so the breakdown keys stay few and the same across targets).
        kind: the HTTP status as a string (``"401"``) or ``"timeout"``, ``"refused"``,
            ``"tls"``, ``"dns"``, ``"reset"``, ``"invalid"`` (not JSON, a field missing),
            ``"error"`` (any other network failure).
        elapsed_ms: from the start of the call to the failure.
        where: the target's ``host:port``, for the reader of the message.
        detail: more context, one line, no secret (the caller's job).
    """

    def __init__(
        self, call: str, kind: str, elapsed_ms: float, where: str = "", detail: str = ""
    ) -> None:
        self.call = call
        self.kind = kind
        self.elapsed_ms = elapsed_ms
        self.where = where
        self.detail = " ".join(detail.split())
        message = f"{call} failed ({kind}) after {elapsed_ms:.0f} ms"
        if where:
            message += f" at {where}"
        if self.detail:
            message += f": {self.detail}"
        super().__init__(message)

    @property
    def status(self) -> int | None:
        """The HTTP status, when the server answered with one."""
        return int(self.kind) if self.kind.isdigit() else None

    @property
    def failure(self) -> str:
        """The ``rest_failures`` breakdown key: ``"POST /auth/login 401"``."""
        return f"{self.call} {self.kind}"


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """A successful (2xx) call: its status, its JSON body and how long it took."""

    status: int
    body: Any
    elapsed_ms: float


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Turn every 3xx into an :class:`urllib.error.HTTPError` instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class RestClient:
    """POSTs JSON to the target; shared by every user greenlet of a process.

    Args:
        timeout_s: the whole call (connect, TLS, request, answer) must fit in it.
        insecure: do not verify certificates (``--insecure``).
        ca_file: trust only this PEM bundle (``--ca-file``), as the WebSocket does.

    Raises:
        UsageError: ``ca_file`` is missing or not a PEM bundle, or ``timeout_s`` is not > 0.
    """

    def __init__(
        self,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        insecure: bool = False,
        ca_file: str | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise UsageError(f"REST timeout must be > 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self.insecure = insecure
        self.ca_file = ca_file
        try:
            context = build_ssl_context(ConnectOptions(insecure=insecure, ca_file=ca_file))
        except (OSError, ssl.SSLError) as exc:
            # Here, once, at start: not as a "tls" failure on every user's first call.
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise UsageError(f"--ca-file {ca_file}: {reason}") from None
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=context),
            _NoRedirects(),
        )

    @classmethod
    def for_connect_options(cls, options: ConnectOptions) -> RestClient:
        """The client matching a WebSocket's options: same TLS trust, ``open_timeout_s``."""
        return cls(options.open_timeout_s, insecure=options.insecure, ca_file=options.ca_file)

    def post_json(
        self,
        base_url: str,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> RestAnswer:
        """``POST base_url + path`` with a JSON body; the answer must be 2xx and JSON.

        Args:
            base_url: ``http(s)://host[:port][/prefix]``, e.g. from :func:`http_base_url`.
            path: ``/consultations``; also names the call in errors and counts.
            body: serialised as JSON.
            headers: sent as given (``Authorization``, ``X-API-Key``); never shown anywhere.

        Returns:
            The status, the decoded body and the elapsed time.

        Raises:
            RestError: any failure, classified by ``kind``.
        """
        call = f"POST {path}"
        url = base_url + path
        where = target_address(url)
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )  # fmt: skip
        started = perf_counter()

        def fail(kind: str, detail: str = "") -> RestError:
            return RestError(call, kind, (perf_counter() - started) * 1000.0, where, detail)

        # The socket timeout bounds each read; this one bounds their sum. Only ours is
        # caught: a Timeout some caller put around us must still reach that caller.
        deadline = gevent.Timeout(self.timeout_s)
        deadline.start()
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise fail(str(exc.code)) from None
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            raise fail("timeout", f"no answer within {self.timeout_s:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else exc
            raise fail(classify_failure(reason), _reason(reason)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise fail(classify_failure(exc), _reason(exc)) from None
        finally:
            deadline.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            raise fail("invalid", "the answer is not JSON") from None
        return RestAnswer(status, answer, (perf_counter() - started) * 1000.0)

    def __repr__(self) -> str:
        trust = "insecure" if self.insecure else (self.ca_file or "system CAs")
        return f"RestClient(timeout_s={self.timeout_s:g}, trust={trust!r})"


def classify_failure(exc: BaseException) -> str:
    """The ``kind`` of a failed call that got no HTTP status, as handshakes count it."""
    if isinstance(exc, http.client.IncompleteRead):
        return "reset"
    kind = classify_network_failure(exc)  # RemoteDisconnected is a ConnectionResetError
    if kind == "error" and isinstance(exc, http.client.HTTPException):
        return "invalid"  # a status line or body that is not HTTP
    return kind


def target_address(url: str) -> str:
    """``host:port`` of a URL, without any ``user:password@`` it may carry: safe to show."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def _reason(exc: BaseException) -> str:
    """A short description of a network failure (never a header or a body)."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
