"""``events.jsonl``: one JSON line per connection lifecycle event, appended as they come.

Lifecycle events (open, reconnect, open_failed, close, giveup, token_refresh) are rare next
to chunks, so plain JSON lines are cheap, greppable and read by pandas (``read_json(...,
lines=True)``). Flushed per batch so a crash loses at most the last window's events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class EventLogWriter:
    """Appends lifecycle events to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write_all(self, events: Iterable[Mapping[str, Any]]) -> None:
        wrote = False
        for event in events:
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
            wrote = True
        if wrote:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_events(run_dir: Path) -> pd.DataFrame:
    """A run's lifecycle events, oldest first (empty frame if there were none)."""
    import pandas as pd  # only readers pay for pandas, never the load generator

    path = Path(run_dir) / "events.jsonl"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["time_utc", "worker", "user", "kind"])
    frame = pd.read_json(path, lines=True, convert_dates=False)
    frame["time_utc"] = pd.to_datetime(frame["time_utc"], utc=True, format="ISO8601")
    return frame.sort_values("time_utc", kind="stable").reset_index(drop=True)
