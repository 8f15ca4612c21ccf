"""The run's decision as terminal lines: each check's verdict, and why the run is marked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_verdict(summary: Mapping[str, Any]) -> str:
    """``PASS streams_completed > 0 (value 180, 180 samples)`` per check, then the marks."""
    lines = []
    slo = summary.get("slo") or {}
    for check in slo.get("checks", []):
        value = check.get("value")
        shown = f"{value:g}" if isinstance(value, int | float) else str(value)
        lines.append(
            f"{check['verdict'].upper():<12} {check['check']} "
            f"(value {shown}, {check.get('samples', 0)} samples)"
        )
    rate_limit = summary.get("rate_limit")
    if rate_limit:
        lines.append(f"RATE LIMIT   {rate_limit_sentence(rate_limit)}")
    capacity = summary.get("capacity")
    if capacity:
        lines.append(f"CAPACITY     {capacity.get('sentence', '')}")
    if summary.get("interrupted"):
        lines.append(f"INTERRUPTED  by {summary.get('interrupted_by') or 'a signal'}")
    incomplete = summary.get("incomplete")
    if incomplete:
        lines.append(f"INCOMPLETE   {incomplete.get('reason', '')}")
    return "\n".join(lines)


def rate_limit_sentence(rate_limit: Mapping[str, Any]) -> str:
    """``first refusal at 10 msg/s per connection (reached 9.6/s): 4 of 23 refused
    (error_frame 4)``, or that nothing was refused up to the highest step."""
    first = rate_limit.get("first_refusal")
    steps = rate_limit.get("steps") or []
    if first is None:
        top = steps[-1] if steps else {}
        return (f"nothing refused up to {top.get('rate_per_s', 0):g} msg/s per connection "
                f"(reached {top.get('achieved_per_s', 0):g}/s)")  # fmt: skip
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted((first.get("refused_by") or {}).items()))
    return (f"first refusal at {first['rate_per_s']:g} msg/s per connection (reached "
            f"{first['achieved_per_s']:g}/s): {first['refused']} of {first['sent']} refused "
            f"({kinds})")  # fmt: skip
