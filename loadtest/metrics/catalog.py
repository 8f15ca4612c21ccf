"""The names of every metric, counter and gauge, as in ``CONTRACT.md`` and ``docs/metrics.md``.

CI jobs read these keys from summary.json, so they are spelled once, here. Recording a name that
is not listed raises at its first use in a window, which turns a typo into a failing test rather
than a silently empty column. Add names here; never rename one without a deprecation path.
"""

from __future__ import annotations

from types import MappingProxyType

METRICS: tuple[str, ...] = (
    "connect_ms",
    "ttfs_ms",
    "ttfc_ms",
    "stream_ms",
    "inter_chunk_ms",
    "pong_rtt_ms",
    "reconnect_ms",
    "schedule_lag_ms",
    "ttfc_from_intended_ms",
    "connection_lifetime_ms",
)
"""Latency metrics of the system under test (histograms, milliseconds). ``ttfc_from_intended_ms``
is the open model's time to first chunk measured from the *intended* start, so queueing in front
of the send (coordinated omission) is not hidden."""

GENERATOR_METRICS: tuple[str, ...] = ("loop_lag_ms", "gc_pause_ms")
"""Latency histograms about the load generator itself, kept out of summary.json ``metrics``."""

COUNTS: tuple[str, ...] = (
    "streams_started",
    "streams_completed",
    "streams_failed",
    "streams_cancelled",
    "connections_opened",
    "connection_failures",
    "disconnects",
    "reconnects",
    "reconnect_giveups",
    "protocol_violations",
    "error_frames",
    "templates_created",
    "pings_sent",
    "pongs_received",
    "pongs_missed",
    "dropped_arrivals",
    "streams_retried",
    "reconnect_attempts",
    "token_refreshes",
    "rest_failures",
    "connections_closed",
    "users_stopped",
)
"""Counter keys; summary.json ``counts`` always holds every one, as a plain int. The last
five extend CONTRACT.md: reconnection attempts (successful or not), JWTs refreshed, failed
REST calls (consultation create, login), connections closed for any reason (so that
opened − closed is the number open at any window's end), and users stopped for the rest of
the run (an auth refusal: starting over would only turn the refusal into load)."""

BREAKDOWNS: MappingProxyType[str, str] = MappingProxyType(
    {
        "connection_failures": "by_status",  # "401", "403", "5xx"-style codes, "timeout" …
        "disconnects": "by_close_code",  # WebSocket close code, e.g. "1006"
        "protocol_violations": "by_kind",  # e.g. "cross_talk", "chunk_before_start"
        "streams_failed": "by_error_kind",  # e.g. "timeout", "error_frame", "disconnect"
        "connections_closed": "by_initiator",  # client, client_abrupt, dead_link, server
        "rest_failures": "by_call",  # "<call> <error>", e.g. "POST /consultations 503"
        "users_stopped": "by_reason",  # "auth 401", "auth 404", "auth POST /auth/login 401"
        "error_frames": "by_code",  # the frame's "code" ("rate_limited", "overloaded"), "no_code"
        "connections_opened": "by_receive_clock",  # how its reads were stamped: kernel, read
    }
)
"""Counter key → name of its breakdown map. Only these counters accept ``by=``; summary.json
``breakdowns[key][map_name]`` maps each label (a string) to its count, and the labels of one map
sum to the counter's total whenever every increment gave a label."""

GAUGES: tuple[str, ...] = ("cpu_share", "rss_mb")
"""Per-window gauges (last and max value): ``cpu_share`` is the generator process's CPU time
over wall time in the window, where 1.0 is one core saturated."""

HISTOGRAM_NAMES: frozenset[str] = frozenset(METRICS + GENERATOR_METRICS)
"""Every name a histogram may be recorded under."""
