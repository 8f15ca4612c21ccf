"""A Locust user that sends faster and faster on one connection until the server refuses.

It climbs the :class:`~loadtest.rate_probe.RateLadder` of ``--probe-rates`` (messages per second
per connection), ``--probe-step-time`` seconds a step. One message at a time, as the protocol
has it: the next goes when the reply has ended and ``1 / rate`` seconds have passed since the
last send. Each message is counted in the step it was *sent* in; each step's tally goes to
``events.jsonl`` (kind ``rate_step``) when the step ends or the user stops, and
:mod:`loadtest.analysis.ratelimit` reads the steps back and names the first refused one.
Refusals also show in the usual counters: ``error_frames``, ``streams_failed`` by kind
``error_frame``, ``disconnects`` by close code.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import gevent
from locust import task

from loadtest.errors import UsageError
from loadtest.protocol import Outcome
from loadtest.rate_probe import RateLadder, StepTally, parse_rates, refusal_kind
from loadtest.session import SessionEnded
from loadtest.users.chat import ConsultationUser

#: How long a user whose session could not be opened waits before trying again.
REOPEN_PAUSE_S = 1.0


def ladder_from_options(options: Any) -> RateLadder:
    """Raises:
    UsageError: a bad ``--probe-rates`` or ``--probe-step-time``, as one line.
    """
    try:
        return RateLadder(parse_rates(options.probe_rates), float(options.probe_step_time))
    except ValueError as exc:
        raise UsageError(f"--probe-rates/--probe-step-time: {exc}") from None


class RateLimitProbeUser(ConsultationUser):
    """Climbs the rate ladder on its connection; counts what the server refuses per step."""

    abstract = True

    @classmethod
    def check_options(cls, options: Any) -> None:
        ladder_from_options(options)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.ladder = ladder_from_options(environment.parsed_options)
        self._began: float | None = None
        self._tally: StepTally | None = None
        self._next_send = 0.0

    def wait_time(self) -> float:
        return 0.0  # the task paces itself; it returns only when a session ended

    def _tally_at(self, now: float) -> StepTally:
        """The tally of the step in force now, writing out the one that ended."""
        assert self._began is not None
        step = self.ladder.step_at(now - self._began)
        tally = self._tally
        if tally is not None and tally.step == step:
            return tally
        boundary = self._began + step * self.ladder.step_s
        if tally is not None:
            self.recorder.rate_step(tally.as_event(min(now, boundary)))
        self._tally = StepTally(step, self.ladder.rates_per_s[step], started_at=boundary)
        return self._tally

    @task
    def probe(self) -> None:
        session = self.live_session()
        if session is None:
            gevent.sleep(REOPEN_PAUSE_S)  # refused: counted; do not hammer the handshake
            return
        if self._began is None:
            self._began = perf_counter()
        try:
            while True:
                wait = self._next_send - perf_counter()
                if wait > 0:
                    gevent.sleep(wait)
                now = perf_counter()
                tally = self._tally_at(now)
                self._next_send = now + self.ladder.interval_s(tally.step)
                stream = session.send_user_message(self.context.prompts.next())
                tally.add(
                    completed=stream.outcome is Outcome.COMPLETED,
                    refusal=refusal_kind(stream.error_kind, stream.close_code),
                    at=perf_counter(),
                )
        except SessionEnded as ended:
            session.close(wait=False)
            self.session = None
            self.stop_if_refused(ended.reason)

    def on_stop(self) -> None:
        if self._tally is not None:
            self.recorder.rate_step(self._tally.as_event(perf_counter()))
            self._tally = None
        super().on_stop()
