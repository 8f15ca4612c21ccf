"""One consultation: create it, connect, send, stream, heartbeat, reconnect.

A :class:`ConsultationSession` is what one simulated FitIQ client does, minus the decisions
about *what* to say and *when* (those are the Locust user's). It speaks through the gevent
transport and the Sans-I/O protocol core, and reports everything it sees to a
:class:`SessionObserver`, so recording metrics is the observer's job, not this module's.

Per-chunk work runs in the connection's reader greenlet (parse, stamp, advance the stream);
the user's greenlet sleeps in :meth:`ConsultationSession.send_user_message` and is woken once,
when its stream finishes, fails or times out.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import gevent
import gevent.event

from loadtest.auth import Token, TokenSource
from loadtest.errors import AuthError, HandshakeError, LoadtestError, TransportError, UsageError
from loadtest.protocol import (
    ErrorFrame,
    MessageType,
    PingReceived,
    PongReceived,
    Stream,
    StreamFinished,
    StreamTracker,
    TemplateCreated,
    TrackerEvent,
    Violation,
    ViolationKind,
    encode_message,
    parse_server_frame,
)
from loadtest.reconnect import ReconnectPolicy, ReconnectSchedule
from loadtest.transport import ConnectOptions, WebSocketConnection

WS_PATH = "/ws/consultation"
NORMAL_CLOSE = 1000


class SessionObserver(Protocol):
    """Everything a session reports. Implementations record; they must not block."""

    def consultation_ready(self, consultation_id: str) -> None: ...

    def connected(self, connect_ms: float, reconnect_ms: float | None) -> None: ...

    def connect_failed(self, kind: str) -> None: ...

    def disconnected(self, close_code: int) -> None: ...

    def connection_closed(self, lifetime_s: float, initiator: str, close_code: int) -> None: ...

    def stream_started(self) -> None: ...

    def stream_finished(self, stream: Stream) -> None: ...

    def violation(self, kind: ViolationKind) -> None: ...

    def error_frame(self) -> None: ...

    def template_created(self) -> None: ...

    def ping_sent(self) -> None: ...

    def pong_received(self, rtt_ms: float) -> None: ...

    def pong_missed(self) -> None: ...

    def reconnect_attempt(self) -> None: ...

    def reconnect_gave_up(self) -> None: ...

    def token_refreshed(self) -> None: ...

    def rest_call(self, name: str, elapsed_ms: float, error: str | None) -> None: ...


class SessionEnded(LoadtestError):
    """The session cannot go on: reconnects exhausted, auth refused, or it was closed."""


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


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ConsultationSession:
    """One simulated client of one consultation.

    Args:
        config: behaviour.
        observer: receives every measurement.
        tokens: where JWTs come from; ``None`` sends none.
        user_index: which user this is (token round-robin, minted subject).
        sleep: injectable for tests of the reconnect timing.
    """

    def __init__(
        self,
        config: SessionConfig,
        observer: SessionObserver,
        tokens: TokenSource | None = None,
        user_index: int = 0,
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self.config = config
        self.observer = observer
        self.user_index = user_index
        self.consultation_id: str | None = config.consultation_id
        self._tokens = tokens
        self._token: Token | None = None
        self._sleep = sleep
        self._tracker = StreamTracker()
        self._last_reported: Stream | None = None
        #: The last stream sent: reported by the user's greenlet when it wakes, or by
        #: close()/drop() if that greenlet was killed first (a Locust user stopping).
        self._in_flight: Stream | None = None
        self._stream_done = gevent.event.Event()
        self._connection: WebSocketConnection | None = None
        self._close_counted: WebSocketConnection | None = None
        self._connected = gevent.event.Event()
        self._schedule: ReconnectSchedule = config.reconnect.schedule()
        self._closing = False
        #: Who is ending the current connection: "client", "client_abrupt", "dead_link";
        #: anything else is the server (or the network).
        self._close_initiator = "server"
        self._ended: str | None = None
        self._lost_at: float | None = None
        self._reconnector: gevent.Greenlet | None = None
        self._heartbeat: gevent.Greenlet | None = None
        self._pending_pings: dict[str, float] = {}
        self._pong_arrived = gevent.event.Event()
        self._missed_pongs = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def connection(self) -> WebSocketConnection | None:
        return self._connection

    def start(self) -> None:
        """Create the consultation if needed and open the first connection.

        Raises:
            SessionEnded: the first connection could not be made and the policy gave up.
        """
        if self.consultation_id is None:
            self.consultation_id = self._create_consultation()
        self.observer.consultation_ready(self.consultation_id)
        self._connect_with_policy(first=True)
        if self._ended is not None:
            raise SessionEnded(f"session ended: {self._ended}")

    def close(self, wait: bool = True) -> None:
        """Leave politely (close 1000): no reconnect follows. Cancels a stream in flight.

        Args:
            wait: wait for the close handshake. ``False`` (a Locust user stopping) records
                everything now and finishes the handshake in the background, so the
                worker's final report to its master, sent right after, carries it all.
        """
        self._leave("client", "closed")
        connection = self._connection
        if connection is not None and not connection.closed.is_set():
            if wait:
                connection.close(NORMAL_CLOSE)
            else:
                self._count_close(perf_counter(), NORMAL_CLOSE)
                gevent.spawn(connection.close, NORMAL_CLOSE)
        self._connected.set()  # release anyone waiting for a connection

    def _leave(self, initiator: str, why: str) -> None:
        """What leaving always means: no more reconnects or pings, the stream in flight
        cancelled and reported (if its own greenlet has not reported it already)."""
        self._closing = True
        self._close_initiator = initiator
        self._ended = self._ended or why
        for greenlet in (self._reconnector, self._heartbeat):
            if greenlet is not None and greenlet is not gevent.getcurrent():
                greenlet.kill(block=False)
        self._tracker.cancel(perf_counter())
        if self._in_flight is not None:
            self._report(self._in_flight)  # no-op if its own greenlet already did
            self._stream_done.set()

    def _count_close(self, at: float, code: int) -> None:
        """Report the current connection's end once, whoever sees it first."""
        connection = self._connection
        if connection is None or connection is self._close_counted:
            return
        self._close_counted = connection
        self.observer.connection_closed(
            at - connection.handshake_done_at, self._close_initiator, code
        )

    def drop(self) -> None:
        """Vanish without a close frame (TCP reset), as a phone losing signal does."""
        self._leave("client_abrupt", "dropped")
        if self._connection is not None:
            self._connection.abort()
        self._connected.set()

    # ------------------------------------------------------------------ conversation

    def send_user_message(self, content: str) -> Stream:
        """Send one ``user_message`` and block this greenlet until its reply ends.

        Returns:
            The finished :class:`Stream` (completed, failed or cancelled), already reported
            to the observer.

        Raises:
            SessionEnded: no connection can be had any more.
        """
        self._wait_until_connected()
        connection = self._connection
        assert connection is not None
        message_id = uuid.uuid4().hex
        payload = encode_message(
            MessageType.USER_MESSAGE, message_id, content, id_key=self.config.id_key
        )
        self._stream_done.clear()
        stream = self._tracker.begin(message_id, perf_counter())
        self._in_flight = stream
        self.observer.stream_started()
        try:
            stream.sent_at = connection.send_text(payload)
        except TransportError as exc:
            # The connection may have closed meanwhile and failed the stream already.
            if not stream.finished:
                self._tracker.fail("send_failed", perf_counter(), detail=str(exc))
            self._report(stream)
            return stream
        if not self._stream_done.wait(self.config.stream_timeout_s) and not stream.finished:
            self._tracker.abandon("timeout", perf_counter())
        self._report(stream)
        return stream

    def _report(self, stream: Stream) -> None:
        """Report a finished stream exactly once, whoever sees it end first."""
        if stream is self._last_reported:
            return
        self._last_reported = stream
        self.observer.stream_finished(stream)

    def _wait_until_connected(self) -> None:
        while True:
            if self._ended is not None:
                raise SessionEnded(f"session ended: {self._ended}")
            if self._connection is not None and self._connection.is_open:
                return
            self._connected.wait()
            if self._connection is not None and not self._connection.is_open:
                self._connected.clear()

    # ------------------------------------------------------------------ frames (reader greenlet)

    def on_text(self, payload: bytes, at: float) -> None:
        if self._closing:
            return  # the user has left: the rest of a cancelled reply is not a violation
        events = self._tracker.receive(parse_server_frame(payload), at)
        if events:
            self._handle(events, at)

    def on_binary(self, payload: bytes, at: float) -> None:
        if self._closing:
            return
        self._handle((Violation(ViolationKind.BINARY_FRAME, f"{len(payload)} bytes"),), at)

    def on_close(self, code: int, reason: str, at: float) -> None:
        self._connected.clear()
        self._count_close(at, code)
        if not self._closing:
            self._close_initiator = "server"
        if self._heartbeat is not None and self._heartbeat is not gevent.getcurrent():
            self._heartbeat.kill(block=False)
        if self._closing:
            return
        self.observer.disconnected(code)
        if self._tracker.current is not None:
            self._tracker.fail("connection_lost", at, detail=reason or None, close_code=code)
            self._stream_done.set()
        policy = self.config.reconnect
        if policy.is_auth_failure(code, None) or policy.should_reconnect(code, None):
            self._lost_at = at
            self._reconnector = gevent.spawn(
                self._connect_with_policy,
                first=False,
                auth_failed=policy.is_auth_failure(code, None),
            )
        else:
            self._end(f"server closed the connection ({code})")

    def _handle(self, events: tuple[TrackerEvent, ...], at: float) -> None:
        observer = self.observer
        for event in events:
            if isinstance(event, StreamFinished):
                self._stream_done.set()
            elif isinstance(event, Violation):
                observer.violation(event.kind)
            elif isinstance(event, PongReceived):
                sent = self._pending_pings.pop(event.message_id, None)
                if sent is not None:
                    self._missed_pongs = 0
                    self._pong_arrived.set()
                    observer.pong_received((at - sent) * 1000.0)
            elif isinstance(event, PingReceived):
                self._send_quietly(MessageType.PONG, event.message_id or uuid.uuid4().hex)
            elif isinstance(event, TemplateCreated):
                observer.template_created()
            elif isinstance(event, ErrorFrame):
                observer.error_frame()

    # ------------------------------------------------------------------ connecting

    def _connect_with_policy(self, first: bool, auth_failed: bool = False) -> None:
        """Connect, retrying as the policy says; on giving up, end the session.

        A 401 (or an auth close code) first earns one token refresh and an immediate retry,
        as the guide's client does; a second auth failure ends the session.
        """
        refreshed = False
        if auth_failed:
            refreshed = self._refresh_token()
            if not refreshed:
                self._end("token refresh failed")
                return
            first = True  # the guide reconnects at once with the fresh token
        while not self._closing:
            if not first:
                delay = self._schedule.next_delay()
                if delay is None:
                    self.observer.reconnect_gave_up()
                    self._end("reconnect attempts exhausted")
                    return
                self._sleep(delay)
                if self._closing:
                    return
                self.observer.reconnect_attempt()
            first = False
            try:
                self._open_connection()
                return
            except HandshakeError as exc:
                self.observer.connect_failed(exc.kind)
                policy = self.config.reconnect
                if policy.is_auth_failure(None, exc.status):
                    if refreshed or not self._refresh_token():
                        self._end(f"authentication refused ({exc.kind})")
                        return
                    refreshed = True
                    first = True  # the guide retries at once after a refresh
                    continue
                if not policy.should_reconnect(None, exc.status):
                    self._end(f"handshake refused ({exc.kind})")
                    return
        # closed while retrying: nothing to do

    def _open_connection(self) -> None:
        token = self._current_token()
        headers = dict(self.config.connect.headers)
        if self.config.api_key:
            headers["X-API-Key"] = self.config.api_key
        options = dataclasses.replace(self.config.connect, headers=headers)
        assert self.consultation_id is not None
        url = self.config.endpoints.ws_url(self.consultation_id, token.value if token else None)
        connection = WebSocketConnection.open(url, self, options)
        if self._closing:  # the user left while this handshake was in flight
            connection.discard()
            return
        self._connection = connection
        reconnect_ms = None
        if self._lost_at is not None:
            reconnect_ms = (connection.handshake_done_at - self._lost_at) * 1000.0
            self._lost_at = None
        self._schedule.reset()
        self.observer.connected(connection.connect_ms, reconnect_ms)
        self._pending_pings.clear()
        self._missed_pongs = 0
        if self.config.heartbeat_interval_s:
            self._heartbeat = gevent.spawn(self._heartbeat_loop, connection)
        self._connected.set()

    def _end(self, why: str) -> None:
        self._ended = self._ended or why
        self._connected.set()

    @property
    def ended(self) -> str | None:
        """Why the session can go on no more, or ``None`` while it can."""
        return self._ended

    # ------------------------------------------------------------------ heartbeat

    def _heartbeat_loop(self, connection: WebSocketConnection) -> None:
        """App-level ``ping`` every interval; ``max_missed_pongs`` in a row and the link is dead.

        At most one ping is outstanding: each waits for its pong up to ``pong_timeout_s``, so
        a miss is unambiguous, and the next is due ``interval`` after the previous was sent.
        """
        interval = self.config.heartbeat_interval_s or 0.0
        timeout = self.config.pong_timeout_s
        due = perf_counter() + interval
        while connection.is_open:
            self._sleep(max(0.0, due - perf_counter()))
            if not connection.is_open:
                return
            ping_id = uuid.uuid4().hex
            self._pong_arrived.clear()
            self._pending_pings[ping_id] = sent = perf_counter()
            if not self._send_quietly(MessageType.PING, ping_id):
                return
            self.observer.ping_sent()
            due = sent + interval
            self._pong_arrived.wait(timeout)
            if not connection.is_open:
                return
            if self._pending_pings.pop(ping_id, None) is not None:
                self._missed_pongs += 1
                self.observer.pong_missed()
                if self._missed_pongs >= self.config.max_missed_pongs:
                    # Dead but not closed: reset it so the reconnect policy takes over.
                    self._close_initiator = "dead_link"
                    connection.abort()
                    return

    def _send_quietly(self, message_type: MessageType, message_id: str) -> bool:
        connection = self._connection
        if connection is None or not connection.is_open:
            return False
        payload = encode_message(message_type, message_id, id_key=self.config.id_key)
        try:
            connection.send_text(payload)
        except TransportError:
            return False
        return True

    # ------------------------------------------------------------------ tokens and REST

    def _current_token(self) -> Token | None:
        if self._tokens is None:
            return None
        if self._token is None:
            self._token = self._tokens.token_for(self.user_index)
        elif self._token.is_expired():
            self._refresh_token()
        return self._token

    def _refresh_token(self) -> bool:
        if self._tokens is None:
            return False
        try:
            current = self._token or self._tokens.token_for(self.user_index)
            self._token = self._tokens.refresh(self.user_index, current)
        except AuthError:
            return False
        self.observer.token_refreshed()
        return True

    def _create_consultation(self) -> str:
        """``POST /consultations`` as the app does before opening the socket.

        Raises:
            SessionEnded: the target refused or could not be reached.
        """
        token = self._current_token()
        body = json.dumps(
            {
                "user_id": f"loadtest-user-{self.user_index}",
                "consultation_type": self.config.consultation_type,
                "initial_message": None,
            }
        ).encode()
        request = urllib.request.Request(
            f"{self.config.endpoints.http_base}/consultations", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token.value}")
        if self.config.api_key:
            request.add_header("X-API-Key", self.config.api_key)
        started = perf_counter()
        error: str | None = None
        try:
            with _no_proxy_opener().open(request, timeout=self.config.connect.open_timeout_s) as r:
                consultation = json.loads(r.read())
            return str(consultation["id"])
        except urllib.error.HTTPError as exc:
            error = str(exc.code)
        except (OSError, ValueError, KeyError) as exc:
            error = type(exc).__name__
        finally:
            self.observer.rest_call(
                "POST /consultations", (perf_counter() - started) * 1000.0, error
            )
        self._end(f"POST /consultations failed ({error})")
        raise SessionEnded(f"POST /consultations failed ({error})")
