"""Connections over time, read from a run directory: open count, churn, storm recovery.

Read-only. The open-connection series is derived from per-window counters
(``connections_opened`` − ``connections_closed``, cumulated), which add up across workers
exactly, rather than from a gauge, which would not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from loadtest.metrics.event_log import read_events
from loadtest.metrics.histogram import LatencyHistogram
from loadtest.utc import utc_micros

#: The fleet counts as back when this share of the connections open before the storm is open.
RECOVERED_SHARE = 0.99


def connection_series(run_dir: Path) -> pd.DataFrame:
    """Per window: ``start_s``, ``opened``, ``closed``, ``open`` (at the window's end).

    Windows of several workers with the same start are summed; windows with no connection
    activity are absent (the open count holds across them).
    """
    rows: dict[float, list[int]] = {}
    path = Path(run_dir) / "intervals.counts.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                window = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            counts = window.get("counts", {})
            opened = int(counts.get("connections_opened", 0))
            closed = int(counts.get("connections_closed", 0))
            if opened or closed:
                slot = rows.setdefault(round(float(window["start_s"]), 6), [0, 0])
                slot[0] += opened
                slot[1] += closed
    frame = pd.DataFrame(
        [(start, opened, closed) for start, (opened, closed) in sorted(rows.items())],
        columns=["start_s", "opened", "closed"],
    )
    frame["open"] = (frame["opened"] - frame["closed"]).cumsum()
    return frame


def storm_summary(run_dir: Path, window_s: float = 1.0) -> dict[str, Any] | None:
    """How the fleet rode out a storm marked in ``events.jsonl`` (kind ``storm``).

    Returns:
        ``None`` without a storm, else ``{"at_utc", "open_before", "recovered",
        "recovery_s", "handshakes": {"succeeded", "failed", "success_ratio"},
        "reconnect_ms": {percentiles}}`` where ``recovery_s`` runs from the storm to the end
        of the first window in which at least 99 % of the connections open before it were
        open again (``None`` if that never happened), and handshakes count those between the
        storm and recovery (or the end of the run).
    """
    events = read_events(run_dir)
    storms = events[events["kind"] == "storm"] if len(events) else events
    if storms.empty:
        return None
    at = storms["time_utc"].iloc[0]
    at_s = at.timestamp()
    series = connection_series(run_dir)
    before = series[series["start_s"] + window_s <= at_s]
    open_before = int(before["open"].iloc[-1]) if len(before) else 0
    after = series[series["start_s"] >= at_s - window_s]
    back = after[after["open"] >= RECOVERED_SHARE * open_before] if open_before else after.iloc[0:0]
    back = back[back["start_s"] + window_s > at_s]
    # The storm's own window may still show everyone open (drops land just after it).
    dropped = after[after["open"] < RECOVERED_SHARE * open_before]
    if len(dropped):
        back = back[back["start_s"] >= dropped["start_s"].iloc[0]]
    recovered_end = float(back["start_s"].iloc[0] + window_s) if len(back) else None
    until = pd.Timestamp(recovered_end, unit="s", tz="UTC") if recovered_end else None
    during = events[events["time_utc"] >= at]
    if until is not None:
        during = during[during["time_utc"] <= until]
    succeeded = int((during["kind"] == "reconnect").sum())
    failed = int((during["kind"] == "open_failed").sum())
    reconnects = LatencyHistogram()
    if "reconnect_ms" in during:
        for value in during["reconnect_ms"].dropna():
            reconnects.record_ms(float(value))
    return {
        "at_utc": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "open_before": open_before,
        "recovered": recovered_end is not None,
        "recovery_s": round(recovered_end - at_s, 3) if recovered_end is not None else None,
        "handshakes": {
            "succeeded": succeeded,
            "failed": failed,
            "success_ratio": round(succeeded / (succeeded + failed), 4)
            if succeeded + failed
            else None,
        },
        "reconnect_ms": reconnects.summary_ms(),
    }


def connections_summary(run_dir: Path, window_s: float = 1.0) -> dict[str, Any]:
    """The ``connections`` section of summary.json: peak open, churn rate, storm if any."""
    series = connection_series(run_dir)
    duration = float(series["start_s"].iloc[-1] - series["start_s"].iloc[0] + window_s) if len(
        series
    ) else 0.0
    return {
        "peak_open": int(series["open"].max()) if len(series) else 0,
        "opened_per_s": round(float(series["opened"].sum()) / duration, 3) if duration else 0.0,
        "closed_per_s": round(float(series["closed"].sum()) / duration, 3) if duration else 0.0,
        "storm": storm_summary(run_dir, window_s),
        "outages": outages(series, window_s),
    }


def outages(series: pd.DataFrame, window_s: float = 1.0) -> list[dict[str, Any]]:
    """Spans in which no connection was open although some had been and some were again.

    A target killed mid-run shows as one: every connection drops, and the span ends with the
    window in which connections open again. Dropping to zero at the end of a run (users
    leaving) is not an outage, since nothing reopens.

    Returns:
        ``[{"from_utc", "to_utc", "seconds"}]``, window-aligned (so ± one window).
    """
    found: list[dict[str, Any]] = []
    down_since: float | None = None
    was_open = False
    for start, opened, is_open in zip(
        series["start_s"], series["opened"], series["open"], strict=True
    ):
        if down_since is not None and opened > 0:
            until = float(start) + window_s
            found.append(
                {
                    "from_utc": utc_micros(down_since),
                    "to_utc": utc_micros(until),
                    "seconds": round(until - down_since, 3),
                }
            )
            down_since = None
        if is_open <= 0 and was_open and down_since is None:
            down_since = float(start)
        was_open = is_open > 0
    return found
