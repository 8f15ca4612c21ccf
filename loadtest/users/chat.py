"""A Locust user that holds one FitIQ consultation and chats in it.

It only orchestrates: open a session, then send a prompt, wait for the whole streamed reply,
think, repeat. Every byte-level decision is the session's and every number the recorder's.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust import User, task
from locust.exception import StopUser

from loadtest.session import ConsultationSession, EndReason, SessionEnded
from loadtest.users.collector import RunCollector
from loadtest.users.context import UserContext
from loadtest.users.recording import SessionRecorder


class ConsultationUser(User):
    """Base for our users: one session, recorded into this process's collector."""

    abstract = True
    session: ConsultationSession | None = None
    #: Whether a user of this class opens its connection as it starts (and so is part of the
    #: ramp the steady state waits for: :mod:`loadtest.users.ramp`).
    connects_on_start = True

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Raise :class:`~loadtest.errors.UsageError` for options this user cannot run with:
        called once per run at start (``check_load_model``), so a bad value is one line, not
        one error per user. Subclasses with options of their own override it."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.collector: RunCollector = environment.loadtest_collector
        self.context: UserContext = environment.loadtest_context
        self.user_index = self.context.next_user_index()
        self.ramp_ticket = self.collector.ramp.join() if self.connects_on_start else None
        self.recorder = SessionRecorder(
            self.collector,
            user=self.user_index,
            worker=self.collector.worker_name,
            fire_request=environment.events.request.fire,
            on_connect_attempt=self.ramp_ticket.done if self.ramp_ticket else None,
        )

    def open_session(self) -> ConsultationSession | None:
        """A fresh consultation and connection, or ``None`` if the target refused it."""
        session = ConsultationSession(
            self.context.session_config,
            self.recorder,
            tokens=self.context.tokens,
            user_index=self.user_index,
            rest=self.context.rest,
        )
        self.session = session
        try:
            session.start()
        except SessionEnded as ended:
            self.stop_if_refused(ended.reason)
            return None
        finally:
            # Ended before any handshake (a refused login, a REST failure): still done.
            self.end_ramp_attempt()
        return session

    def end_ramp_attempt(self) -> None:
        if self.ramp_ticket is not None:
            self.ramp_ticket.done()

    def stop_if_refused(self, reason: EndReason | None) -> None:
        """An auth refusal (401/403 after a refresh, 404, a refused login) ends this user for
        the rest of the run: starting over with the same credentials would only turn the
        refusal into load.

        Raises:
            StopUser: the session ended on an auth refusal.
        """
        if reason is not None and reason.is_auth_giveup:
            self.collector.guard.user_stopped_on_auth(reason)
            raise StopUser()

    def live_session(self) -> ConsultationSession | None:
        """The current session, or a new one if it ended (as a user reopening the app)."""
        if self.session is not None and self.session.ended is None:
            return self.session
        return self.open_session()

    def on_stop(self) -> None:
        self.end_ramp_attempt()
        if self.session is not None:
            self.session.close(wait=False)


class ChatUser(ConsultationUser):
    """Steady chat: send, stream to the end, think, repeat."""

    abstract = True

    def wait_time(self) -> float:
        return self.context.think()

    @task
    def converse(self) -> None:
        session = self.live_session()
        if session is None:
            return  # refused: counted; wait_time paces the next attempt
        prompt = self.context.prompts.next()
        try:
            stream = session.send_user_message(prompt)
            if stream.error_kind == "connection_lost" and session.config.retry_interrupted:
                # As a user would: wait for the reconnect, then ask again, once.
                self.recorder.retried = True
                session.send_user_message(prompt)
        except SessionEnded as ended:
            self.stop_if_refused(ended.reason)
            gevent.idle()
