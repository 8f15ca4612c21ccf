"""UTC timestamps as every file of the run directory writes them (ISO 8601 with a ``Z``)."""

from __future__ import annotations

import time


def utc_seconds(epoch: float) -> str:
    """``2026-12-01T21:03:08Z``: to the second, for run metadata and report headings."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))


def utc_micros(epoch: float) -> str:
    """``2026-12-01T21:03:08.123456Z``: to the microsecond, for rows, events and spans."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{seconds}.{int(epoch % 1 * 1_000_000):06d}Z"
