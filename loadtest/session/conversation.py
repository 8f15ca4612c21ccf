"""One consultation's conversation: create it, send a message, wait for the whole reply.

A :class:`ConsultationSession` is what one simulated FitIQ client does, minus the decisions
about *what* to say and *when* (those are the Locust user's). Keeping the connection open is
the :class:`~loadtest.session.supervisor.ConnectionSupervisor`'s job; recording is the
:class:`~loadtest.session.observer.SessionObserver`'s.

The user's greenlet sleeps in :meth:`ConsultationSession.send_user_message` and is woken once,
when its stream finishes, fails or times out.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import NoReturn

import gevent
import gevent.event

from loadtest.auth import TokenSource
from loadtest.consultations import create_consultation
from loadtest.entropy import random_id
from loadtest.errors import AuthError, TransportError
from loadtest.protocol import MessageType, Stream, encode_message
from loadtest.rest import RestClient, RestError
from loadtest.session.config import SessionConfig
from loadtest.session.credentials import UserCredentials, rest_failure_of
from loadtest.session.observer import EndKind, EndReason, SessionEnded, SessionObserver
from loadtest.session.supervisor import NORMAL_CLOSE, ConnectionSupervisor
from loadtest.transport import WebSocketConnection

#: Multiplies ``--seed`` so that user ``i`` of seed ``s`` and user ``j`` of seed ``s + 1`` do
#: not share a jitter sequence.
_SEED_STRIDE = 1_000_003


class ConsultationSession:
    """One simulated client of one consultation.

    Args:
        config: behaviour.
        observer: receives every measurement.
        tokens: where JWTs come from; ``None`` sends none.
        user_index: which user this is (token round-robin, minted subject, jitter seed).
        rest: the process's REST client; ``None`` makes one with the connection's TLS trust.
        sleep: injectable for tests of the reconnect timing.
    """

    def __init__(
        self,
        config: SessionConfig,
        observer: SessionObserver,
        tokens: TokenSource | None = None,
        user_index: int = 0,
        rest: RestClient | None = None,
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self.config = config
        self._rest = rest or RestClient.for_connect_options(config.connect)
        self.observer = observer
        self.user_index = user_index
        self._credentials = UserCredentials(tokens, user_index, observer)
        self._stream_done = gevent.event.Event()
        self._supervisor = ConnectionSupervisor(
            config,
            observer,
            self._credentials,
            self._stream_done.set,
            jitter_seed=config.seed * _SEED_STRIDE + user_index,
            sleep=sleep,
        )
        self._last_reported: Stream | None = None
        #: The last stream sent: reported by the user's greenlet when it wakes, or by
        #: close()/drop() if that greenlet was killed first (a Locust user stopping).
        self._in_flight: Stream | None = None

    @property
    def consultation_id(self) -> str | None:
        return self._supervisor.consultation_id

    @property
    def connection(self) -> WebSocketConnection | None:
        return self._supervisor.connection

    @property
    def frame_handler(self) -> ConnectionSupervisor:
        """What the transport hands this session's frames to (tests feed it directly)."""
        return self._supervisor

    @property
    def ended(self) -> str | None:
        """Why the session can go on no more, or ``None`` while it can."""
        reason = self._supervisor.end_reason
        return None if reason is None else reason.detail

    @property
    def end_reason(self) -> EndReason | None:
        return self._supervisor.end_reason

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create the consultation if needed and open the first connection.

        Raises:
            SessionEnded: the consultation could not be created, or the first connection
                could not be made and the policy gave up.
        """
        supervisor = self._supervisor
        if supervisor.consultation_id is None:
            supervisor.consultation_id = self._create_consultation()
        self.observer.consultation_ready(supervisor.consultation_id)
        supervisor.connect_first()
        if supervisor.end_reason is not None:
            raise SessionEnded(supervisor.end_reason)

    def close(self, wait: bool = True) -> None:
        """Leave politely (close 1000): no reconnect follows. Cancels a stream in flight.

        Args:
            wait: wait for the close handshake. ``False`` (a Locust user stopping) records
                everything now and finishes the handshake in the background, so the
                worker's final report to its master, sent right after, carries it all.
        """
        self._leave("client", EndReason(EndKind.CLOSED, "closed"))
        self._supervisor.close_connection(wait)

    def drop(self) -> None:
        """Vanish without a close frame (TCP reset), as a phone losing signal does."""
        self._leave("client_abrupt", EndReason(EndKind.DROPPED, "dropped"))
        self._supervisor.abort_connection()

    def _leave(self, initiator: str, reason: EndReason) -> None:
        """What leaving always means: no more reconnects or pings, the stream in flight
        cancelled and reported (if its own greenlet has not reported it already)."""
        self._supervisor.leave(initiator, reason)
        if self._in_flight is not None:
            self._report(self._in_flight)  # no-op if its own greenlet already did
            self._stream_done.set()

    # ------------------------------------------------------------------ conversation

    def send_user_message(self, content: str) -> Stream:
        """Send one ``user_message`` and block this greenlet until its reply ends.

        Returns:
            The finished :class:`Stream` (completed, failed or cancelled), already reported
            to the observer.

        Raises:
            SessionEnded: no connection can be had any more.
        """
        supervisor = self._supervisor
        connection = supervisor.wait_until_connected()
        tracker = supervisor.tracker  # this connection's: a reconnect brings a fresh one
        message_id = random_id()
        payload = encode_message(
            MessageType.USER_MESSAGE, message_id, content, id_key=self.config.id_key
        )
        self._stream_done.clear()
        stream = tracker.begin(message_id, perf_counter())
        self._in_flight = stream
        self.observer.stream_started()
        try:
            stream.sent_at = connection.send_text(payload)
        except TransportError as exc:
            # The connection may have closed meanwhile and failed the stream already.
            if not stream.finished:
                tracker.fail("send_failed", perf_counter(), detail=str(exc))
            self._report(stream)
            return stream
        if not self._stream_done.wait(self.config.stream_timeout_s) and not stream.finished:
            tracker.abandon("timeout", perf_counter())
        self._report(stream)
        return stream

    def _report(self, stream: Stream) -> None:
        """Report a finished stream exactly once, whoever sees it end first."""
        if stream is self._last_reported:
            return
        self._last_reported = stream
        self.observer.stream_finished(stream)

    # ------------------------------------------------------------------ REST

    def _create_consultation(self) -> str:
        """``POST /consultations`` as the app does before opening the socket.

        Raises:
            SessionEnded: the target refused (auth: this user stops) or could not be reached.
        """
        try:
            token = self._credentials.current()
        except AuthError as exc:
            failure = rest_failure_of(exc)
            self._give_up(
                EndReason(EndKind.AUTH, str(exc), " ".join(failure) if failure else "token")
            )
        try:
            return create_consultation(
                self._rest,
                self.config.endpoints.http_base,
                self.user_index,
                self.config.consultation_type,
                None if token is None else token.value,
                self.config.api_key,
                observe=self.observer.rest_call,
            )
        except RestError as exc:
            # The statuses the reconnect policy never retries (who we are, or which consultation)
            # end the user here too: one rule for the handshake and the REST call.
            refused = exc.status in self.config.reconnect.no_retry_statuses
            kind = EndKind.AUTH if refused else EndKind.REST_FAILED
            self._give_up(EndReason(kind, str(exc), exc.failure))

    def _give_up(self, reason: EndReason) -> NoReturn:
        self._supervisor.end(reason)
        raise SessionEnded(reason)


__all__ = ["NORMAL_CLOSE", "ConsultationSession"]
