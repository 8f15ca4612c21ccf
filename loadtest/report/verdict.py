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
    capacity = summary.get("capacity")
    if capacity:
        lines.append(f"CAPACITY     {capacity.get('sentence', '')}")
    if summary.get("interrupted"):
        lines.append(f"INTERRUPTED  by {summary.get('interrupted_by') or 'a signal'}")
    incomplete = summary.get("incomplete")
    if incomplete:
        lines.append(f"INCOMPLETE   {incomplete.get('reason', '')}")
    return "\n".join(lines)
