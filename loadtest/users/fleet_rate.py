"""The open model's fleet-wide arrival rate, which a step load changes while the run goes on.

Every process holds one :class:`FleetRate`. A single process's step shape sets it directly;
a master announces each step to its workers with a Locust custom message (the shape runs on
the master only), and each worker sets its own. Arrival drivers read the rate and wait on its
change event instead of sleeping, so a new step's schedule starts the moment it is announced.
"""

from __future__ import annotations

from typing import Any

import gevent.event
from locust.runners import MasterRunner, WorkerRunner

RATE_STEP_MESSAGE = "loadtest_rate_step"


class FleetRate:
    """Arrivals per second across the fleet: ``--arrival-rate``, or the current rate step."""

    def __init__(self, rate_per_s: float, steps: tuple[float, ...] = ()) -> None:
        self.rate_per_s = steps[0] if steps else rate_per_s
        self.steps = steps
        #: Set (and replaced by a fresh one) at every change: a driver waits on the one it
        #: read the rate with.
        self.changed = gevent.event.Event()

    def set(self, rate_per_s: float) -> None:
        self.rate_per_s = rate_per_s
        changed, self.changed = self.changed, gevent.event.Event()
        changed.set()

    def set_step(self, index: int) -> None:
        if 0 <= index < len(self.steps) and self.steps[index] != self.rate_per_s:
            self.set(self.steps[index])


def fleet_rate(environment: Any) -> FleetRate:
    """This process's :class:`FleetRate`, made from the options at first use (a remote worker
    knows them only from test start)."""
    found = getattr(environment, "loadtest_fleet_rate", None)
    if found is None:
        from loadtest.users.shapes import parse_steps

        options = environment.parsed_options
        text = str(getattr(options, "rate_steps", "") or "")
        steps = parse_steps(text, what="--rate-steps", whole=False) if text else ()
        found = FleetRate(float(getattr(options, "arrival_rate", 0) or 0), steps)
        environment.loadtest_fleet_rate = found
    return found


def listen_for_rate_steps(environment: Any) -> None:
    """Worker: follow the master's rate steps."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def on_step(msg: Any, **_: Any) -> None:
            fleet_rate(environment).set_step(int(msg.data["index"]))

        runner.register_message(RATE_STEP_MESSAGE, on_step)


def announce_rate_step(environment: Any, index: int) -> None:
    """Master or single process: the fleet moves to rate step ``index``."""
    runner = environment.runner
    fleet_rate(environment).set_step(index)
    if isinstance(runner, MasterRunner):
        runner.send_message(RATE_STEP_MESSAGE, {"index": index})
