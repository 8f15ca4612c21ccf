"""A Locust user that starts conversations on a schedule: the open model.

Locust users are closed-loop: a user waits for its reply before it asks again, so a stalled
server quietly receives fewer requests and its stall vanishes from the percentiles
(coordinated omission). An :class:`ArrivalUser` instead starts a new conversation at every
intended start of an :class:`~loadtest.arrivals.ArrivalSchedule`, whatever the server is
doing, each in its own greenlet, and records when it *meant* to start: ``schedule_lag_ms``
and ``ttfc_from_intended_ms`` keep the server's stalls in the numbers.

``--arrival-rate R`` is the rate across all users: each of the ``-u`` users runs ``R / u``.
"""

from __future__ import annotations

import itertools
from time import perf_counter

import gevent
import gevent.event
import gevent.pool
from locust import task
from locust.runners import WorkerRunner

from loadtest.arrivals import ArrivalSchedule, fleet_phase
from loadtest.errors import LoadtestError
from loadtest.session import ConsultationSession, EndReason, SessionEnded
from loadtest.users.chat import ConsultationUser
from loadtest.users.fleet_rate import fleet_rate
from loadtest.users.recording import SessionRecorder


class ArrivalUser(ConsultationUser):
    """Drives one share of the arrival schedule; each arrival is a short conversation."""

    abstract = True
    #: A driver only schedules arrivals; each arrival's conversation connects on its own.
    connects_on_start = False
    conversations: gevent.pool.Pool | None = None
    #: Set when a conversation ended on an auth refusal: the driver stops arriving.
    refused: EndReason | None = None

    def wait_time(self) -> float:
        return 0.0

    @task
    def arrive(self) -> None:
        options = self.environment.parsed_options
        users = max(1, int(getattr(options, "num_users", 1) or 1))
        fleet = fleet_rate(self.environment)
        if fleet.rate_per_s <= 0:
            raise LoadtestError("the arrival scenario needs --arrival-rate R (per second)")
        runner = self.environment.runner
        workers = int(getattr(options, "processes", 0) or 0)
        phase = fleet_phase(
            self.context.next_driver_index(),
            users,
            int(getattr(runner, "worker_index", 0) or 0),
            workers if workers > 0 else (None if isinstance(runner, WorkerRunner) else 1),
        )
        pool = self.conversations = gevent.pool.Pool(max(1, int(options.max_in_flight)))
        for generation in itertools.count():  # a step load starts a schedule at each step
            changed = fleet.changed
            schedule = ArrivalSchedule(
                fleet.rate_per_s / users,
                process=options.arrival_process,
                seed=options.seed * 7919 + self.user_index + generation * 104_729,
                phase=phase,
            )
            self._follow(schedule, changed, pool, int(options.turns))

    def _follow(
        self,
        schedule: ArrivalSchedule,
        changed: gevent.event.Event,
        pool: gevent.pool.Pool,
        turns: int,
    ) -> None:
        """Start conversations on ``schedule`` until the fleet's rate changes."""
        started = perf_counter()
        for offset in schedule.offsets():
            intended = started + offset
            delay = intended - perf_counter()
            if changed.wait(delay) if delay > 0 else changed.is_set():
                return
            if self.refused is not None:
                self.stop_if_refused(self.refused)
            if pool.full():
                self.collector.count("dropped_arrivals")
                continue
            pool.spawn(self._conversation, intended, turns)

    def _conversation(self, intended_start: float, turns: int) -> None:
        recorder = SessionRecorder(
            self.collector,
            user=self.context.next_user_index(),
            worker=self.collector.worker_name,
            fire_request=self.environment.events.request.fire,
        )
        session = ConsultationSession(
            self.context.session_config,
            recorder,
            tokens=self.context.tokens,
            user_index=recorder.user,
            rest=self.context.rest,
        )
        try:
            session.start()
            for turn in range(turns):
                recorder.intended_start = intended_start if turn == 0 else None
                session.send_user_message(self.context.prompts.next())
        except SessionEnded as ended:
            if ended.reason.is_auth_giveup:
                self.refused = self.refused or ended.reason
        finally:
            session.close(wait=False)

    def on_stop(self) -> None:
        # Each conversation closes its session as it is killed, reporting a stream still in
        # flight as cancelled, not failed.
        if self.conversations is not None:
            self.conversations.kill(block=True, timeout=5)
        super().on_stop()
