"""When conversations should start in the open model: constant or Poisson, seeded.

Pure: an :class:`ArrivalSchedule` yields intended start offsets (seconds from the start of
the schedule). The user that drives it sleeps until each one and records how late it really
sent, so a slow server can never slow the arrivals down (no coordinated omission).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from loadtest.errors import UsageError

PROCESSES = ("constant", "poisson")


@dataclass(frozen=True)
class ArrivalSchedule:
    """Arrivals at ``rate_per_s`` on average.

    Args:
        rate_per_s: mean arrivals per second (> 0).
        process: ``constant`` (evenly spaced) or ``poisson`` (exponential gaps).
        seed: makes a Poisson schedule reproducible.
        phase: fraction of one gap to shift a constant schedule by, so that several
            generators at the same rate interleave instead of arriving together.

    Raises:
        UsageError: a rate that is not positive, or an unknown process.
    """

    rate_per_s: float
    process: str = "constant"
    seed: int | None = 0
    phase: float = 0.0

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0:
            raise UsageError(f"arrival rate must be > 0 per second, got {self.rate_per_s}")
        if self.process not in PROCESSES:
            raise UsageError(f"arrival process must be one of {PROCESSES}, not {self.process!r}")

    def offsets(self) -> Iterator[float]:
        """Intended start times, seconds after the schedule starts, increasing forever."""
        gap = 1.0 / self.rate_per_s
        if self.process == "constant":
            index = 0
            while True:
                yield (index + self.phase) * gap
                index += 1
        rng = random.Random(self.seed)
        moment = 0.0
        while True:
            moment += rng.expovariate(self.rate_per_s)
            yield moment


#: The golden ratio's fractional part: successive multiples spread over [0, 1) as evenly as
#: any sequence can without knowing how many there will be.
_GOLDEN_FRACTION = 0.6180339887498949


def fleet_phase(local_index: int, users: int, worker_index: int, workers: int | None) -> float:
    """Where in one gap a generator's constant schedule starts, so a fleet interleaves.

    Each of ``users`` generators (across every worker) runs ``rate / users``; giving each a
    distinct phase ``k / users`` spreads the fleet's arrivals evenly. Locust hands worker
    ``w`` of ``W`` the users ``w, w + W, w + 2W …``, so the fleet index of this worker's
    ``local_index``-th user is ``w + local_index * W``. When the worker count is unknown (a
    worker on another machine), workers are offset by multiples of the golden ratio instead:
    not even, but never in lockstep.

    Args:
        local_index: this user's number within its worker, from 0.
        users: generators across the fleet (``-u``).
        worker_index: Locust's index of this worker, 0 for a single process.
        workers: how many workers share the load, if known.

    Returns:
        A fraction in ``[0, 1)``.
    """
    users = max(1, users)
    if workers:
        return ((worker_index + local_index * workers) % users) / users
    return (local_index / users + worker_index * _GOLDEN_FRACTION) % 1.0
