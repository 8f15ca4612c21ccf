"""Timestamps in the run directory: ISO 8601 UTC with a Z, the same whoever formats them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.utc import utc_date_time, utc_micros, utc_seconds

EPOCHS = st.floats(min_value=0.0, max_value=4_102_444_800.0, allow_nan=False)  # to 2100


@settings(max_examples=500, deadline=None)
@given(EPOCHS)
def test_micros_are_the_moment_truncated_to_the_microsecond(epoch: float) -> None:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    assert utc_micros(epoch) == f"{whole}.{int(epoch % 1 * 1_000_000):06d}Z"


def test_a_known_moment() -> None:
    moment = datetime(2026, 12, 1, 21, 3, 8, 123456, tzinfo=UTC).timestamp()
    assert utc_micros(moment).startswith("2026-12-01T21:03:08.12345")
    assert utc_seconds(moment) == "2026-12-01T21:03:08Z"
    assert utc_date_time(int(moment)) == "2026-12-01T21:03:08"


def test_consecutive_seconds_are_not_confused_by_the_cache() -> None:
    base = 1_764_622_988
    assert [utc_date_time(base + n)[-2:] for n in range(3)] == ["08", "09", "10"]
