"""A Locust user that comes and goes: connection churn at a target rate.

Each life: open a consultation, chat for a random lifetime, leave (cleanly with close 1000,
or abruptly with a TCP reset, as a phone losing signal), wait a little, come back. With ``-u``
users and a mean lifetime L, the fleet opens about ``u / L`` connections per second;
``--churn-rate R`` sets L = u / R directly.
"""

from __future__ import annotations

from time import perf_counter

import gevent
from locust import task

from loadtest.errors import UsageError
from loadtest.session import SessionEnded
from loadtest.users.chat import ConsultationUser
from loadtest.users.options import parse_think_time


class ChurnUser(ConsultationUser):
    """Lives, chats, leaves, returns."""

    abstract = True

    def wait_time(self) -> float:
        low, high = parse_think_time(str(self.environment.parsed_options.rejoin_after))
        return self.context.rng.uniform(low, high)

    def lifetime_s(self) -> float:
        """How long this life lasts: exponential around the churn rate's mean, or uniform."""
        options = self.environment.parsed_options
        rng = self.context.rng
        if options.churn_rate:
            users = max(1, int(getattr(options, "num_users", 1) or 1))
            return rng.expovariate(options.churn_rate / users)
        try:
            low, high = parse_think_time(str(options.lifetime))
        except ValueError as exc:
            raise UsageError(f"--lifetime: {exc}") from None
        return rng.uniform(low, high)

    @task
    def live(self) -> None:
        session = self.open_session()
        if session is None:
            return
        ends_at = perf_counter() + self.lifetime_s()
        try:
            while perf_counter() < ends_at:
                session.send_user_message(self.context.prompts.next())
                gevent.sleep(min(self.context.think(), max(0.0, ends_at - perf_counter())))
        except SessionEnded as ended:
            self.stop_if_refused(ended.reason)
            return
        finally:
            abrupt = self.context.rng.random() < self.environment.parsed_options.abrupt_share
            if abrupt:
                session.drop()
            else:
                session.close()
            self.session = None
