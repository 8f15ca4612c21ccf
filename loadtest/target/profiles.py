"""Latency profiles: when each frame of one reply is due.

A profile turns a random source into a :class:`StreamPlan` — offsets in seconds from the moment
generation begins — and says how many generation slots exist (``slots``; 0 = unlimited). The
streaming code waits for a slot, then sends every frame at ``begin + offset``: offsets are
absolute, never chained, so scheduling error does not accumulate along a stream. Pure: no clock,
no I/O.

Profiles:

- ``fixed`` — exact timings, for accuracy tests of the client.
- ``realistic`` — lognormal time to first chunk, lognormal gaps, lognormal chunk count: the long
  right tails an LLM backend shows.
- ``capacity`` — ``slots`` generations at once; further requests queue for a slot, so TTFC grows
  with concurrency once it exceeds the slots and a knee appears at ``slots / service time``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class StreamPlan:
    """Due offsets (seconds from generation begin) of one reply's frames."""

    start_s: float
    chunk_s: tuple[float, ...]
    complete_s: float


def _fixed_plan(ttfs_ms: float, ttfc_ms: float, gap_ms: float, chunks: int) -> StreamPlan:
    first = ttfc_ms / 1000.0
    gap = gap_ms / 1000.0
    offsets = tuple(first + i * gap for i in range(chunks))
    return StreamPlan(start_s=min(ttfs_ms / 1000.0, first), chunk_s=offsets,
                      complete_s=offsets[-1])


@dataclass(frozen=True)
class FixedProfile:
    """Every reply identical: start after ``ttfs_ms``, first chunk after ``ttfc_ms``, then one
    chunk every ``chunk_gap_ms``, complete right after the last chunk."""

    name: ClassVar[str] = "fixed"
    ttfs_ms: float = 0.0
    ttfc_ms: float = 50.0
    chunk_gap_ms: float = 10.0
    chunks: int = 20

    @property
    def slots(self) -> int:
        return 0

    def plan(self, rng: random.Random) -> StreamPlan:
        return _fixed_plan(self.ttfs_ms, self.ttfc_ms, self.chunk_gap_ms, self.chunks)


@dataclass(frozen=True)
class RealisticProfile:
    """Lognormal everything. ``ttfc_ms``, ``chunk_gap_ms`` and ``chunks`` are *medians*; the
    ``*_sigma`` values are the standard deviations of their logarithms (0 = constant)."""

    name: ClassVar[str] = "realistic"
    ttfs_ms: float = 0.0
    ttfc_ms: float = 800.0
    ttfc_sigma: float = 0.5
    chunk_gap_ms: float = 35.0
    gap_sigma: float = 0.5
    chunks: int = 60
    chunks_sigma: float = 0.5
    chunks_min: int = 1
    chunks_max: int = 1000

    @property
    def slots(self) -> int:
        return 0

    def plan(self, rng: random.Random) -> StreamPlan:
        ttfc = self.ttfc_ms * math.exp(rng.gauss(0.0, self.ttfc_sigma)) / 1000.0
        count = round(self.chunks * math.exp(rng.gauss(0.0, self.chunks_sigma)))
        count = max(self.chunks_min, min(self.chunks_max, count), 1)
        gap_median = self.chunk_gap_ms / 1000.0
        offsets = [ttfc]
        for _ in range(count - 1):
            offsets.append(offsets[-1] + gap_median * math.exp(rng.gauss(0.0, self.gap_sigma)))
        return StreamPlan(start_s=min(self.ttfs_ms / 1000.0, ttfc), chunk_s=tuple(offsets),
                          complete_s=offsets[-1])


@dataclass(frozen=True)
class CapacityProfile:
    """``slots`` concurrent generations with fixed service timings. A reply waits for a free
    slot; its start, chunks and complete are then timed from the moment it got one, and it holds
    the slot until complete. ``max_queue`` > 0 answers an ``error`` frame (code ``overloaded``)
    when that many replies already wait."""

    name: ClassVar[str] = "capacity"
    slots: int = 4
    max_queue: int = 0
    ttfs_ms: float = 0.0
    ttfc_ms: float = 200.0
    chunk_gap_ms: float = 20.0
    chunks: int = 30

    def plan(self, rng: random.Random) -> StreamPlan:
        return _fixed_plan(self.ttfs_ms, self.ttfc_ms, self.chunk_gap_ms, self.chunks)


LatencyProfile = FixedProfile | RealisticProfile | CapacityProfile
PROFILES: dict[str, type[LatencyProfile]] = {
    cls.name: cls for cls in (FixedProfile, RealisticProfile, CapacityProfile)
}


def profile_parameters(name: str) -> dict[str, object]:
    """The tunable parameters of a profile and their defaults (for help and docs)."""
    return {f.name: f.default for f in dataclasses.fields(PROFILES[name])}


def build_profile(name: str, params: Mapping[str, object]) -> LatencyProfile:
    """Build a profile from its name and overrides given as text or numbers.

    Raises:
        ValueError: unknown profile, unknown parameter, or a value of the wrong type/range.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    cls = PROFILES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, object] = {}
    for key, raw in params.items():
        if key not in fields:
            raise ValueError(f"profile {name!r} has no parameter {key!r}; "
                             f"known: {', '.join(fields)}")
        kind = int if isinstance(fields[key].default, int) else float
        try:
            value = kind(float(raw)) if kind is int else kind(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{key}={raw!r} is not a number") from None
        if kind is int and float(raw) != int(float(raw)):  # type: ignore[arg-type]
            raise ValueError(f"{key}={raw!r} must be a whole number")
        if value < 0:  # type: ignore[operator]
            raise ValueError(f"{key}={raw!r} must not be negative")
        values[key] = value
    profile = cls(**values)  # type: ignore[arg-type]
    if getattr(profile, "chunks", 1) < 1:
        raise ValueError("chunks must be at least 1")
    if isinstance(profile, CapacityProfile) and profile.slots < 1:
        raise ValueError("slots must be at least 1")
    return profile
