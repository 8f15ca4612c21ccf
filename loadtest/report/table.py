"""The terminal percentile table: read a summary, return text. No I/O of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtest.report.headline import format_ms, steady_state_text

#: Metrics in the order a reader wants them, with what they measure.
METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("connect_ms", "TCP connect → handshake accepted"),
    ("ttfs_ms", "sent → ai_message_start"),
    ("ttfc_ms", "sent → first chunk"),
    ("ttfc_from_intended_ms", "intended start → first chunk"),
    ("stream_ms", "sent → ai_message_complete"),
    ("inter_chunk_ms", "gap between chunks"),
    ("pong_rtt_ms", "ping → pong"),
    ("reconnect_ms", "drop → handshake accepted"),
    ("schedule_lag_ms", "intended start → sent"),
)
DEFINITIONS = "docs/metrics.md (from → to, what is pooled, what is excluded)"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("count", "count"),
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("p999", "p99.9"),
    ("max", "max"),
)


def render_percentile_table(summary: Mapping[str, Any]) -> str:
    """Percentiles (ms) of every recorded metric, then the non-zero counts."""
    metrics: Mapping[str, Mapping[str, Any]] = summary.get("metrics", {})
    header = ["metric (ms)"] + [label for _, label in COLUMNS]
    rows = [header]
    for key, _meaning in METRIC_ROWS:
        values = metrics.get(key)
        if not values or not values.get("count"):
            continue
        rows.append([key] + [format_ms(values.get(column), column) for column, _ in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if len(rows) == 1:
        lines.append("(no latency recorded in the steady state)" if "steady_state" in summary
                     else "(no latency recorded)")  # fmt: skip
    if summary.get("steady_state"):
        lines.insert(0, steady_state_text(summary))
    counts: Mapping[str, Any] = summary.get("counts", {})
    shown = [f"{key} {value:,}" for key, value in counts.items() if value]
    if shown:
        lines.append("")
        lines.append(" · ".join(shown))
    breakdowns: Mapping[str, Mapping[str, Mapping[str, int]]] = summary.get("breakdowns", {})
    for key, maps in breakdowns.items():
        for map_name, values in maps.items():
            if values:
                detail = ", ".join(f"{k}: {v}" for k, v in sorted(values.items()))
                lines.append(f"{key} {map_name}: {detail}")
    storm = (summary.get("connections") or {}).get("storm")
    if storm:
        handshakes = storm["handshakes"]
        back = f"back in {storm['recovery_s']:.1f} s" if storm["recovered"] else "NOT back"
        lines.append(
            f"storm at {storm['at_utc']}: {storm['open_before']} open before, {back}; "
            f"handshakes {handshakes['succeeded']} ok / {handshakes['failed']} failed"
        )
    lines.append("")
    lines.append(f"metric definitions: {DEFINITIONS}")
    return "\n".join(lines)
