"""A Locust user for smoke tests: does the target work at all? The first failure ends the run.

A smoke test is not a measurement: it answers "can a user create a consultation, connect and
get a whole reply?" in seconds, before anyone spends an hour of load on a broken build. So a
session that cannot start, or a stream that does not complete, stops the run at once with one
line saying what failed; the built-in gate then fails it (exit 3).
"""

from __future__ import annotations

from locust import task
from locust.exception import StopUser

from loadtest.protocol import Outcome
from loadtest.session import SessionEnded
from loadtest.users.chat import ChatUser


class SmokeUser(ChatUser):
    """Chat as usual, but stop the whole run at the first thing that does not work."""

    abstract = True

    @task
    def converse(self) -> None:
        session = self.live_session()
        if session is None:
            reason = self.session.ended if self.session is not None else "no session"
            self.collector.guard.fail_fast(f"could not start a session: {reason}")
            raise StopUser()
        try:
            stream = session.send_user_message(self.context.prompts.next())
        except SessionEnded as ended:
            self.collector.guard.fail_fast(f"the session ended: {ended.reason.detail}")
            raise StopUser() from None
        if stream.outcome is Outcome.FAILED:
            code = f", close {stream.close_code}" if stream.close_code is not None else ""
            self.collector.guard.fail_fast(
                f"a stream failed ({stream.error_kind}{code}) after "
                f"{(stream.end_at or stream.sent_at) - stream.sent_at:.1f} s"
            )
            raise StopUser()
