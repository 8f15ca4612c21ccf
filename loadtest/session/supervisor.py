"""Keep one consultation's WebSocket open: connect, heartbeat, reconnect by policy.

The supervisor owns the connection and everything that lives and dies with it: the reader's
frame dispatch, the heartbeat, and a fresh :class:`~loadtest.protocol.StreamTracker` per
connection, so nothing one connection saw (an abandoned reply, a half-read stream) can leak
into the next. The conversation on top only sends messages and waits for their replies.

Frames are handled in the connection's reader greenlet (parse, stamp, advance the stream);
the conversation's greenlet is woken once per stream through ``on_stream_end``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from time import perf_counter

import gevent
import gevent.event

from loadtest.entropy import random_id
from loadtest.errors import AuthError, HandshakeError, TransportError
from loadtest.protocol import (
    ErrorFrame,
    MessageType,
    PingReceived,
    PongReceived,
    StreamFinished,
    StreamTracker,
    TemplateCreated,
    TrackerEvent,
    Violation,
    ViolationKind,
    encode_message,
)
from loadtest.session.config import SessionConfig
from loadtest.session.credentials import UserCredentials, rest_failure_of
from loadtest.session.heartbeat import Heartbeat
from loadtest.session.observer import EndKind, EndReason, SessionEnded, SessionObserver
from loadtest.transport import WebSocketConnection

NORMAL_CLOSE = 1000


class ConnectionSupervisor:
    """One consultation's connection, kept open as the client guide's app keeps it.

    Args:
        config: behaviour (reconnect policy, heartbeat, timeouts).
        observer: receives every measurement.
        credentials: the user's token.
        on_stream_end: called (in the reader greenlet) when the stream in flight finishes.
        rng: reconnect jitter, seeded per user for reproducible runs.
        jitter_seed: instead of ``rng``, the seed of one made on the first reconnect.
        sleep: injectable for tests of the reconnect timing.
    """

    def __init__(
        self,
        config: SessionConfig,
        observer: SessionObserver,
        credentials: UserCredentials,
        on_stream_end: Callable[[], None],
        *,
        rng: random.Random | None = None,
        jitter_seed: int | None = None,
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self.config = config
        self.observer = observer
        self.consultation_id: str | None = config.consultation_id
        self.tracker = StreamTracker()
        self._credentials = credentials
        self._on_stream_end = on_stream_end
        self._sleep = sleep
        self._connection: WebSocketConnection | None = None
        self._close_counted: WebSocketConnection | None = None
        self._connected = gevent.event.Event()
        self._schedule = config.reconnect.schedule(rng, seed=jitter_seed)
        self._closing = False
        #: Who is ending the current connection: "client", "client_abrupt", "dead_link";
        #: anything else is the server (or the network).
        self._close_initiator = "server"
        self.end_reason: EndReason | None = None
        self._lost_at: float | None = None
        self._reconnector: gevent.Greenlet | None = None
        self._heartbeat: Heartbeat | None = None

    @property
    def connection(self) -> WebSocketConnection | None:
        return self._connection

    @property
    def closing(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------ the caller's side

    def connect_first(self) -> None:
        """Open the first connection, retrying as the policy says (ends the session if not)."""
        self._connect_with_policy(first=True)

    def wait_until_connected(self) -> WebSocketConnection:
        """The open connection, waiting through a reconnect if one is under way.

        Raises:
            SessionEnded: no connection can be had any more.
        """
        while True:
            if self.end_reason is not None:
                raise SessionEnded(self.end_reason)
            connection = self._connection
            if connection is not None and connection.is_open:
                return connection
            self._connected.wait()
            connection = self._connection
            if connection is not None and not connection.is_open:
                self._connected.clear()

    def leave(self, initiator: str, reason: EndReason) -> None:
        """No more reconnects or pings; the stream in flight, if any, is cancelled."""
        self._closing = True
        self._close_initiator = initiator
        self.end_reason = self.end_reason or reason
        reconnector = self._reconnector
        if reconnector is not None and reconnector is not gevent.getcurrent():
            reconnector.kill(block=False)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self.tracker.cancel(perf_counter())

    def close_connection(self, wait: bool) -> None:
        """Close 1000 after :meth:`leave`; ``wait=False`` counts it now, closes in background."""
        connection = self._connection
        if connection is not None and not connection.closed.is_set():
            if wait:
                connection.close(NORMAL_CLOSE)
            else:
                self._count_close(perf_counter(), NORMAL_CLOSE)
                gevent.spawn(connection.close, NORMAL_CLOSE)
        self._connected.set()  # release anyone waiting for a connection

    def abort_connection(self) -> None:
        """Reset after :meth:`leave`, without a close frame."""
        if self._connection is not None:
            self._connection.abort()
        self._connected.set()

    def send_quietly(self, message_type: MessageType, message_id: str) -> bool:
        """Send a control message (ping, pong); ``False`` if the connection is gone."""
        connection = self._connection
        if connection is None or not connection.is_open:
            return False
        payload = encode_message(message_type, message_id, id_key=self.config.id_key)
        try:
            connection.send_text(payload)
        except TransportError:
            return False
        return True

    def end(self, reason: EndReason) -> None:
        self.end_reason = self.end_reason or reason
        self._connected.set()

    # ------------------------------------------------------------------ frames (reader greenlet)

    def on_text(self, payload: bytes, at: float) -> None:
        if self._closing:
            return  # the user has left: the rest of a cancelled reply is not a violation
        events = self.tracker.receive_text(payload, at)
        if events:
            self._handle(events)

    def on_binary(self, payload: bytes, at: float) -> None:
        self.on_violation(Violation(ViolationKind.BINARY_FRAME, f"{len(payload)} bytes"), at)

    def on_violation(self, violation: Violation, at: float) -> None:
        """A frame the transport could not hand on (binary, oversized, bad UTF-8, bad
        framing): counted, and on the open stream too, like any other violation."""
        if self._closing:
            return
        self._handle(self.tracker.receive(violation, at))

    def on_close(self, code: int, reason: str, at: float) -> None:
        self._connected.clear()
        self._count_close(at, code)
        if not self._closing:
            self._close_initiator = "server"
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._closing:
            return
        self.observer.disconnected(code)
        if self.tracker.current is not None:
            self.tracker.fail("connection_lost", at, detail=reason or None, close_code=code)
            self._on_stream_end()
        policy = self.config.reconnect
        auth_failed = policy.is_auth_failure(code, None)
        if auth_failed or policy.should_reconnect(code, None):
            self._lost_at = at
            self._reconnector = gevent.spawn(
                self._connect_with_policy,
                first=False,
                auth_failed_code=code if auth_failed else None,
            )
        elif code == NORMAL_CLOSE:
            self.end(EndReason(EndKind.SERVER_CLOSED, f"server closed the connection ({code})"))
        else:
            self.end(EndReason(EndKind.GAVE_UP, f"server closed the connection ({code})"))

    def _handle(self, events: tuple[TrackerEvent, ...]) -> None:
        observer = self.observer
        for event in events:
            if isinstance(event, StreamFinished):
                self._on_stream_end()
            elif isinstance(event, Violation):
                observer.violation(event.kind)
            elif isinstance(event, PongReceived):
                if self._heartbeat is not None:
                    self._heartbeat.pong(event.message_id, event.at)
            elif isinstance(event, PingReceived):
                self.send_quietly(MessageType.PONG, event.message_id or random_id())
            elif isinstance(event, TemplateCreated):
                observer.template_created()
            elif isinstance(event, ErrorFrame):
                observer.error_frame(event.label)

    def _count_close(self, at: float, code: int) -> None:
        """Report the current connection's end once, whoever sees it first."""
        connection = self._connection
        if connection is None or connection is self._close_counted:
            return
        self._close_counted = connection
        self.observer.connection_closed(
            at - connection.handshake_done_at, self._close_initiator, code
        )

    # ------------------------------------------------------------------ connecting

    def _connect_with_policy(self, first: bool, auth_failed_code: int | None = None) -> None:
        """Connect, retrying as the policy says; on giving up, end the session.

        A 401 (or an auth close code) first earns one token refresh and an immediate retry,
        as the guide's client does; a second auth failure ends the session for good.
        """
        refreshed = False
        if auth_failed_code is not None:
            if not self._credentials.refresh():
                self.end(self._auth_end(f"close {auth_failed_code}", "token refresh failed"))
                return
            refreshed = True
            first = True  # the guide reconnects at once with the fresh token
        policy = self.config.reconnect
        while not self._closing:
            if not first:
                delay = self._schedule.next_delay()
                if delay is None:
                    self.observer.reconnect_gave_up()
                    self.end(EndReason(EndKind.GAVE_UP, "reconnect attempts exhausted"))
                    return
                self._sleep(delay)
                if self._closing:
                    return
                self.observer.reconnect_attempt()
            first = False
            try:
                self._open_connection()
                return
            except AuthError as exc:  # no token to be had: a refused login, say
                failure = rest_failure_of(exc)
                status = f"{failure[0]} {failure[1]}" if failure else "token"
                self.end(self._auth_end(status, str(exc)))
                return
            except HandshakeError as exc:
                self.observer.connect_failed(exc.kind)
                if policy.is_auth_failure(None, exc.status):
                    if refreshed or not self._credentials.refresh():
                        self.end(self._auth_end(exc.kind, f"authentication refused ({exc.kind})"))
                        return
                    refreshed = True
                    first = True  # the guide retries at once after a refresh
                    continue
                if not policy.should_reconnect(None, exc.status):
                    self.end(self._auth_end(exc.kind, f"handshake refused ({exc.kind})"))
                    return
        # closed while retrying: nothing to do

    @staticmethod
    def _auth_end(status: str, detail: str) -> EndReason:
        return EndReason(EndKind.AUTH, detail, status)

    def _open_connection(self) -> None:
        token = self._credentials.current()
        headers = dict(self.config.connect.headers)
        if self.config.api_key:
            headers["X-API-Key"] = self.config.api_key
        options = dataclasses.replace(self.config.connect, headers=headers)
        assert self.consultation_id is not None
        url = self.config.endpoints.ws_url(self.consultation_id, token.value if token else None)
        # A new connection starts a new conversation state: nothing the last one saw (an
        # abandoned reply, a half-read stream) may be stitched onto this one. Made before the
        # handshake, since frames read with the handshake response are dispatched at once.
        self.tracker = StreamTracker()
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
        self.observer.connected(connection.connect_ms, reconnect_ms, connection.receive_clock)
        if self.config.heartbeat_interval_s:
            self._heartbeat = Heartbeat(
                connection,
                interval_s=self.config.heartbeat_interval_s,
                timeout_s=self.config.pong_timeout_s,
                max_missed=self.config.max_missed_pongs,
                observer=self.observer,
                send=self.send_quietly,
                on_dead=lambda: self._reset_dead_link(connection),
            )
            self._heartbeat.start()
        self._connected.set()

    def _reset_dead_link(self, connection: WebSocketConnection) -> None:
        """Dead but not closed: reset it so the reconnect policy takes over."""
        self._close_initiator = "dead_link"
        connection.abort()
