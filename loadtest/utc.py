"""UTC timestamps as every file of the run directory writes them (ISO 8601 with a ``Z``)."""

from __future__ import annotations

import functools
import time


def utc_seconds(epoch: float) -> str:
    """``2026-12-01T21:03:08Z``: to the second, for run metadata and report headings."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))


def utc_micros(epoch: float) -> str:
    """``2026-12-01T21:03:08.123456Z``: to the microsecond, for rows, events and spans."""
    return f"{utc_date_time(int(epoch // 1))}.{int(epoch % 1 * 1_000_000):06d}Z"


@functools.lru_cache(maxsize=8)
def utc_date_time(second: int) -> str:
    """``2026-12-01T21:03:08`` for whole epoch seconds: formatted once per second, as
    timestamps written per stream and per message share it (strftime costs ~2 µs)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
