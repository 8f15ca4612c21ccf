"""A Locust user that holds an idle, heartbeating connection: connection capacity.

It opens one consultation and then says nothing, answering server pings and sending the
app-level heartbeat, for as long as the run lasts. Thousands fit in one worker process; the
question it answers is how many the backend holds, and what heartbeats cost it.
"""

from __future__ import annotations

import gevent
from locust import task

from loadtest.users.chat import ConsultationUser


class IdleUser(ConsultationUser):
    """Connect once, then only heartbeat."""

    abstract = True

    def wait_time(self) -> float:
        return 1.0

    @task
    def hold(self) -> None:
        session = self.live_session()
        if session is None:
            return
        # Sleep until the session ends (reconnects happen inside it) or the run stops.
        while session.ended is None:
            gevent.sleep(1.0)
        self.stop_if_refused(session.end_reason)
