"""The rate-limit probe's plan and tally: a ladder of message rates, refusals counted per step.

A probing user climbs the ladder on one connection: for ``step_s`` seconds it sends at the
first rate (messages per second), then at the next, and so on, holding the last rate until the
run ends. Each message is sent when the previous reply has ended *and* ``1 / rate`` seconds
have passed since the previous send, so the rate reached is ``min(rate, 1 / reply time)``; the
tally records the rate reached beside the one asked for.

A *refusal* is the server saying no to a message: an ``error`` frame in place of the reply
(``error_frame``), or the server closing the connection on it (``close <code>``). Timeouts and
failed sends are not refusals; they are counted apart (``other_failed``).

Pure: no clock, no I/O; the caller passes the moments in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1,2,4,8"`` → (1.0, 2.0, 4.0, 8.0): messages per second per connection, each > 0.

    Raises:
        ValueError: empty, not numbers, or a rate <= 0, as one line.
    """
    try:
        rates = tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        rates = ()
    if not rates or any(not rate > 0 for rate in rates):
        raise ValueError(f"expected rates per second > 0, comma-separated (e.g. 1,2,4,8), "
                         f"not {text!r}")  # fmt: skip
    return rates


@dataclass(frozen=True, slots=True)
class RateLadder:
    """Which rate applies when.

    Args:
        rates_per_s: the steps' rates, in order.
        step_s: how long each step lasts; the last one lasts until the run ends.

    Raises:
        ValueError: no rates, or ``step_s`` <= 0.
    """

    rates_per_s: tuple[float, ...]
    step_s: float

    def __post_init__(self) -> None:
        if not self.rates_per_s:
            raise ValueError("a rate ladder needs at least one rate")
        if not self.step_s > 0:
            raise ValueError(f"probe step time must be > 0 s, not {self.step_s:g}")

    def step_at(self, elapsed_s: float) -> int:
        """The step in force ``elapsed_s`` seconds after the probe began."""
        return min(int(max(0.0, elapsed_s) // self.step_s), len(self.rates_per_s) - 1)

    def interval_s(self, step: int) -> float:
        """Seconds between sends at that step."""
        return 1.0 / self.rates_per_s[step]


def refusal_kind(error_kind: str | None, close_code: int | None) -> str | None:
    """The refusal a finished stream was, or ``None`` if the server did not refuse it.

    Args:
        error_kind: the stream's ``error_kind`` (``"error_frame"``, ``"connection_lost"`` …).
        close_code: the close code that ended it, if a close did.
    """
    if error_kind == "error_frame":
        return "error_frame"
    if error_kind == "connection_lost" and close_code is not None:
        return f"close {close_code}"
    return None


@dataclass(slots=True)
class StepTally:
    """What one user sent at one step, and what came of it."""

    step: int
    rate_per_s: float
    started_at: float
    sent: int = 0
    completed: int = 0
    refused: int = 0
    other_failed: int = 0
    refused_by: dict[str, int] = field(default_factory=dict)
    #: Seconds from the step's start to its first refusal.
    first_refusal_s: float | None = None

    def add(self, *, completed: bool, refusal: str | None, at: float) -> None:
        """Count one message's outcome (O(1))."""
        self.sent += 1
        if completed:
            self.completed += 1
        elif refusal is not None:
            self.refused += 1
            self.refused_by[refusal] = self.refused_by.get(refusal, 0) + 1
            if self.first_refusal_s is None:
                self.first_refusal_s = at - self.started_at
        else:
            self.other_failed += 1

    def as_event(self, ended_at: float) -> dict[str, Any]:
        """The step's ``events.jsonl`` fields (kind ``rate_step``)."""
        duration = max(0.0, ended_at - self.started_at)
        return {
            "step": self.step,
            "rate_per_s": self.rate_per_s,
            "duration_s": round(duration, 3),
            "sent": self.sent,
            "achieved_per_s": round(self.sent / duration, 3) if duration > 0 else None,
            "completed": self.completed,
            "refused": self.refused,
            "refused_by": dict(self.refused_by),
            "other_failed": self.other_failed,
            "first_refusal_s": (
                None if self.first_refusal_s is None else round(self.first_refusal_s, 3)
            ),
        }
