"""Load shapes for the scenario library: how many users, when.

Pure functions say how many users a shape wants at a moment; thin ``LoadTestShape`` classes
hand that to Locust (``use_common_options``: ``-u``, ``-r`` and ``-t`` keep their meaning).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from locust import LoadTestShape, User

from loadtest.errors import UsageError
from loadtest.timespan import duration_seconds
from loadtest.users.fleet_rate import announce_rate_step


def spike_users(elapsed_s: float, base: int, spike: int, at_s: float, duration_s: float) -> int:
    """Users wanted ``elapsed_s`` into a spike run: ``base``, then ``spike`` for a while."""
    return spike if at_s <= elapsed_s < at_s + duration_s else base


class SpikeShape(LoadTestShape):
    """Steady at ``-u``; at ``--spike-at`` s, ``--spike-users`` for ``--spike-duration`` s
    (spawned as fast as ``-r`` allows, so the burst is real); then back to ``-u`` until ``-t``.
    """

    use_common_options = True
    abstract = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None:
            return None
        elapsed = self.get_run_time()
        if options.run_time and elapsed >= options.run_time:  # Locust leaves -t to the shape
            return None
        base = int(options.num_users or 1)
        spike = int(options.spike_users or 3 * base)
        users = spike_users(elapsed, base, spike, options.spike_at, options.spike_duration)
        rate = float(options.spawn_rate or users)
        return users, max(rate, float(spike))  # the burst arrives at once, as a spike does


DEFAULT_STEPS: tuple[float, ...] = (2, 4, 8, 16)
"""``capacity`` without ``--steps`` or ``--rate-steps``: these many users, in turn."""


def parse_steps(text: str, *, what: str = "--steps", whole: bool = True) -> tuple[float, ...]:
    """``"2,4,8,16"`` → ``(2, 4, 8, 16)``.

    Raises:
        UsageError: empty, not numbers, not positive, or (``whole``) not whole numbers.
    """
    try:
        loads = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        loads = ()
    if (
        not loads
        or any(load <= 0 for load in loads)
        or (whole and any(load != int(load) for load in loads))
    ):
        kind = "whole numbers of users" if whole else "arrival rates per second"
        raise UsageError(f"{what} takes positive {kind}, comma-separated (e.g. 2,4,8), "
                         f"not {text!r}")  # fmt: skip
    return loads


@dataclass
class StepRecord:
    """One step as it really ran (epoch seconds): asked for, load reached, ended.

    ``reached_s`` is when the load was really there: in the closed model when Locust reported
    every user of the step spawned (its ramp can lag the request by seconds, across workers
    more), in the open model when the step's rate was announced (arrivals follow it from then).
    """

    index: int
    users: int | None
    rate: float | None
    requested_s: float
    reached_s: float | None = None
    ended_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepPlan:
    """A step load as a pure state machine: which step runs now, and when each was reached.

    Each step is held ``hold_s`` from the moment its load is *reached*, not requested, so a
    slow ramp never eats into a step's measurement.
    """

    loads: tuple[float, ...]
    hold_s: float
    open_model: bool = False
    records: list[StepRecord] = field(default_factory=list)

    @property
    def current(self) -> StepRecord | None:
        return self.records[-1] if self.records else None

    def wanted(self, now: float) -> int | None:
        """The index of the step to run at ``now`` (starting or moving on as due); ``None``
        once the last step has been held."""
        step = self.current
        if step is None:
            return self._begin(0, now)
        if step.reached_s is not None and now - step.reached_s >= self.hold_s:
            step.ended_s = now
            return self._begin(step.index + 1, now) if step.index + 1 < len(self.loads) else None
        return step.index

    def reached(self, now: float, users: int | None = None) -> bool:
        """The current step's load is there (``users``: Locust's count, checked against the
        step's in the closed model). True when this call marked it."""
        step = self.current
        if step is None or step.reached_s is not None:
            return False
        if not self.open_model and users is not None and users != step.users:
            return False
        step.reached_s = now
        return True

    def close(self, now: float) -> None:
        """The run stopped: the current step ends now (it may be shorter than ``hold_s``)."""
        step = self.current
        if step is not None and step.ended_s is None:
            step.ended_s = now

    def total_s(self) -> float:
        """The least time the plan takes (ramps excluded)."""
        return self.hold_s * len(self.loads)

    def _begin(self, index: int, now: float) -> int:
        load = self.loads[index]
        self.records.append(
            StepRecord(
                index=index,
                users=None if self.open_model else int(load),
                rate=load if self.open_model else None,
                requested_s=now,
                reached_s=now if self.open_model else None,
            )
        )
        return index


class StepLoadShape(LoadTestShape):
    """A step load: ``--steps`` users, or ``--rate-steps`` arrivals per second, each held
    ``--step-time`` once reached; ends after the last step (or at ``-t``, if sooner).

    A scenario subclasses it and names its two user classes: ``closed_user`` runs the
    ``--steps``, ``open_user`` (``-u`` arrival drivers) the ``--rate-steps``. Every step is
    recorded in ``run.json`` (``load.steps``) for the capacity analysis.
    """

    use_common_options = True
    abstract = True
    closed_user: ClassVar[type[User]]
    open_user: ClassVar[type[User]]
    plan: StepPlan | None = None

    @staticmethod
    def plan_from(options: Any) -> StepPlan:
        """The step plan of these options.

        Raises:
            UsageError: a bad ``--steps``, ``--rate-steps`` or ``--step-time``, or both kinds.
        """
        users = str(getattr(options, "steps", "") or "")
        rates = str(getattr(options, "rate_steps", "") or "")
        if users and rates:
            raise UsageError("give --steps (users) or --rate-steps (arrivals/s), not both")
        if float(getattr(options, "arrival_rate", 0) or 0) > 0:
            raise UsageError("a step load sets its own load: use --rate-steps, "
                             "not --arrival-rate")  # fmt: skip
        text = str(getattr(options, "step_time", "30s") or "30s")
        hold = duration_seconds(text)
        if hold <= 0:
            raise UsageError(f"--step-time takes a duration such as 30s or 2m, not {text!r}")
        if rates:
            return StepPlan(parse_steps(rates, what="--rate-steps", whole=False), hold, True)
        return StepPlan(parse_steps(users) if users else DEFAULT_STEPS, hold)

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        if self.runner is None:
            return None
        environment = self.runner.environment
        options = environment.parsed_options
        now = time.time()
        if self.plan is None:
            self.plan = self.plan_from(options)
            environment.events.spawning_complete.add_listener(self._on_spawned)
            environment.events.test_stopping.add_listener(self._on_stopping)
            if options.run_time and options.run_time < self.plan.total_s():
                print(f"loadtest: warning: {len(self.plan.loads)} steps of "
                      f"{self.plan.hold_s:g} s need {self.plan.total_s():g} s or more; "
                      f"-t {options.run_time} s cuts the last ones short",
                      file=sys.stderr, flush=True)  # fmt: skip
        if options.run_time and self.get_run_time() >= options.run_time:
            return None  # Locust leaves -t to the shape
        before = self.plan.current
        index = self.plan.wanted(now)
        if index is None:
            self._record()
            return None
        if self.plan.current is not before:
            self._record()
            if self.plan.open_model:
                announce_rate_step(environment, index)
        if self.plan.open_model:
            drivers = int(options.num_users or 1)
            return drivers, float(drivers), [self.open_user]
        users = int(self.plan.loads[index])
        if before is not None and before.users == users:
            self.plan.reached(now, users)  # Locust spawns nothing for an unchanged count
        rate = float(options.spawn_rate or users)
        return users, rate, [self.closed_user]

    def _on_spawned(self, user_count: int, **_: Any) -> None:
        if self.plan is not None and self.plan.reached(time.time(), int(user_count)):
            self._record()

    def _on_stopping(self, **_: Any) -> None:
        if self.plan is not None:
            self.plan.close(time.time())
            self._record()

    def _record(self) -> None:
        collector = getattr(self.runner.environment, "loadtest_collector", None)
        if collector is not None and self.plan is not None:
            collector.record_steps([step.to_json() for step in self.plan.records])
