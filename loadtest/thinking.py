"""How long a simulated user thinks between turns, and how many turns a conversation has.

Two distributions:

* ``uniform`` over ``[low, high]`` seconds (``--think-time 1-3``): what the steady scenarios use;
* ``lognormal`` with a *median* and a *sigma* (the standard deviation of the logarithm), capped
  (``--think-median 8 --think-sigma 0.6 --think-cap 60``): people mostly answer within seconds,
  sometimes read for a minute. With median m and sigma s the mean is ``m * exp(s² / 2)``
  (8 s, 0.6 → 9.6 s) and the 95th percentile ``m * exp(1.645 s)`` (→ 21.5 s). A draw above the
  cap *is* the cap (it is not drawn again), so the cap bounds every pause and the share of
  pauses at the cap is ``P(X > cap)``, about 0.04 % for 8 s, 0.6, 60 s.

Pure: the random source is passed in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DISTRIBUTIONS = ("uniform", "lognormal")


@dataclass(frozen=True, slots=True)
class ThinkTime:
    """One think-time distribution; :meth:`draw` gives a pause in seconds.

    Args:
        distribution: ``"uniform"`` or ``"lognormal"``.
        low_s, high_s: the uniform bounds.
        median_s, sigma, cap_s: the lognormal's median, log standard deviation and cap.

    Raises:
        ValueError: an unknown distribution or a value out of range, as one line.
    """

    distribution: str = "uniform"
    low_s: float = 1.0
    high_s: float = 3.0
    median_s: float = 8.0
    sigma: float = 0.6
    cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"think distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                f"not {self.distribution!r}"
            )
        if self.distribution == "uniform":
            if not 0.0 <= self.low_s <= self.high_s:
                raise ValueError(f"uniform think time needs 0 <= low <= high, not "
                                 f"{self.low_s:g}-{self.high_s:g}")  # fmt: skip
            return
        if not self.median_s > 0.0:
            raise ValueError(f"think median must be > 0 s, not {self.median_s:g}")
        if not self.sigma >= 0.0:
            raise ValueError(f"think sigma must be >= 0, not {self.sigma:g}")
        if not self.cap_s > 0.0:
            raise ValueError(f"think cap must be > 0 s, not {self.cap_s:g}")

    def draw(self, rng: random.Random) -> float:
        """One pause, seconds."""
        if self.distribution == "uniform":
            low, high = self.low_s, self.high_s
            return low if low == high else rng.uniform(low, high)
        return min(self.cap_s, rng.lognormvariate(math.log(self.median_s), self.sigma))


def parse_range(text: str, what: str = "range") -> tuple[int, int]:
    """``"5"`` → (5, 5); ``"3-8"`` → (3, 8): whole numbers, at least 1.

    Raises:
        ValueError: not one or two whole numbers >= 1 in order.
    """
    low, dash, high = str(text).strip().partition("-")
    try:
        bounds = (int(low), int(high if dash else low))
    except ValueError:
        bounds = (0, 0)
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise ValueError(f"{what}: expected 'N' or 'MIN-MAX' whole numbers >= 1, not {text!r}")
    return bounds


def draw_turns(turns: tuple[int, int], rng: random.Random) -> int:
    """How many turns one conversation has: uniform over the inclusive range."""
    low, high = turns
    return low if low == high else rng.randint(low, high)
