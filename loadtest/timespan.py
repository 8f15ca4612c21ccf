"""Durations as Locust writes them: ``90``, ``90s``, ``10m``, ``1h30m``."""

from __future__ import annotations

import re

TIMESPAN = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


def timespan_seconds(text: str) -> int:
    """Locust's duration syntax in whole seconds; 0 when it is not one (or is empty)."""
    match = TIMESPAN.match((text or "").strip())
    if not match:
        return 0
    hours, minutes, seconds = (int(match.group(name) or 0) for name in ("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds


def duration_seconds(text: str) -> float:
    """Plain seconds (fractions too: ``2.5``) or Locust's syntax (``30s``, ``2m``); 0 when it
    is neither."""
    try:
        return float(text)
    except ValueError:
        return float(timespan_seconds(text))
