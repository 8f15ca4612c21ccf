"""Where the server started refusing: the rate-limit probe's steps, read back from a run.

The probe writes one ``events.jsonl`` line per user and step (kind ``rate_step``, see
:mod:`loadtest.rate_probe`). :func:`rate_steps` adds them up per step over every user;
:func:`first_refusal` names the lowest step at which anything was refused. Read-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RATE_STEP_EVENT = "rate_step"


def read_rate_step_events(run_dir: Path) -> list[dict[str, Any]]:
    """The ``rate_step`` lines of a run's ``events.jsonl`` (empty if there are none)."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    found = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if RATE_STEP_EVENT in line:
                event = json.loads(line)
                if event.get("kind") == RATE_STEP_EVENT:
                    found.append(event)
    return found


def rate_steps(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per step (ascending), summed over users: rate asked, users, messages sent, reached rate
    per connection (mean over users), completed, refused (and by kind), other failures."""
    steps: dict[int, dict[str, Any]] = {}
    for event in events:
        step = steps.setdefault(
            int(event["step"]),
            {"step": int(event["step"]), "rate_per_s": event["rate_per_s"], "users": 0,
             "sent": 0, "achieved_per_s": 0.0, "completed": 0, "refused": 0,
             "refused_by": {}, "other_failed": 0},
        )  # fmt: skip
        step["users"] += 1
        for key in ("sent", "completed", "refused", "other_failed"):
            step[key] += int(event.get(key) or 0)
        step["achieved_per_s"] += float(event.get("achieved_per_s") or 0.0)
        for kind, n in (event.get("refused_by") or {}).items():
            step["refused_by"][kind] = step["refused_by"].get(kind, 0) + int(n)
    ordered = [steps[key] for key in sorted(steps)]
    for step in ordered:
        step["achieved_per_s"] = round(step["achieved_per_s"] / step["users"], 3)
    return ordered


def first_refusal(steps: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The lowest step with a refusal, or ``None`` if the server refused nothing."""
    return next((dict(step) for step in steps if step["refused"]), None)
