"""When the ramp's users had each made their first connection attempt.

Locust reports spawning complete once every user of the ramp has been *started*; their first
connects may still be in flight, and on a slow machine or a slow target they land after it.
The steady state starts only once they are all done (connected, refused or given up), so a
ramp's connect work never lands in the headline numbers. In a distributed run every worker
tracks its own users and ships the moment; the master takes the latest, once every worker
it has seen has sent one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class RampTicket:
    """One ramp user's first connection attempt; :meth:`done` may be called any number of
    times (the first counts), so every way a user can end its attempt may call it."""

    __slots__ = ("_on_done",)

    def __init__(self, on_done: Callable[[], None]) -> None:
        self._on_done: Callable[[], None] | None = on_done

    def done(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done()


class RampTracker:
    """Counts the ramp's users still making their first connection attempt.

    Args:
        on_connected: called once, when :attr:`connected_at` is set.
        clock: epoch seconds (injectable for tests).
    """

    def __init__(
        self,
        on_connected: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._on_connected = on_connected
        self._clock = clock
        self._pending = 0
        self._last_done: float | None = None
        self.spawning_completed: float | None = None
        #: When the last ramp user finished its first attempt, never before spawning
        #: completed; ``None`` until then.
        self.connected_at: float | None = None

    def join(self) -> RampTicket | None:
        """A user starts: a ticket if it belongs to the ramp, ``None`` if spawning completed."""
        if self.spawning_completed is not None:
            return None
        self._pending += 1
        return RampTicket(self._ticket_done)

    def _ticket_done(self) -> None:
        self._pending -= 1
        self._last_done = self._clock()
        self._settle()

    def spawning_complete(self) -> None:
        if self.spawning_completed is None:
            self.spawning_completed = self._clock()
            self._settle()

    def _settle(self) -> None:
        if self.connected_at is None and self.spawning_completed is not None and not self._pending:
            self.connected_at = ramp_done_at(self.spawning_completed, self._last_done)
            if self._on_connected is not None:
                self._on_connected()


def ramp_done_at(spawning_completed: float, last_attempt: float | None) -> float:
    """The ramp is done when spawning completed and its last first attempt ended, whichever
    came later: the one rule ``run.json``'s ``load.ramp_connected_s`` follows."""
    return spawning_completed if last_attempt is None else max(spawning_completed, last_attempt)


def fleet_connected_at(
    by_worker: dict[str, float], workers: Iterable[str], spawning_completed: float
) -> float | None:
    """The master's moment: the latest worker's (never before the master saw spawning
    complete), once every worker seen has sent one."""
    seen = set(workers)
    if not seen or not seen <= by_worker.keys():
        return None
    return ramp_done_at(spawning_completed, max(by_worker[worker] for worker in seen))
