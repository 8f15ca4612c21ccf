"""What each latency metric measures, from → to, as every report shows it.

``docs/metrics.md`` explains the metrics in prose; its latency table is the same text as
:data:`LATENCY_DEFINITIONS` (a test compares them), so a report never shows a definition the
documentation does not. Text is Markdown (backticks for names): renderers escape it and turn the
backticks into code spans themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class MetricDefinition:
    """One metric's definition.

    Attributes:
        key: the metric key in summary.json (``ttfc_ms``).
        from_to: the two moments the duration lies between (or, for generator health, what
            is measured).
        one_sample_per: what contributes one sample; empty for generator metrics.
        excluded: what does not contribute a sample; empty for generator metrics.
    """

    key: str
    from_to: str
    one_sample_per: str = ""
    excluded: str = ""


_LATENCY: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        "connect_ms",
        from_to="TCP connect start → WebSocket handshake accepted (`101`)",
        one_sample_per="successful connection, first or reconnect",
        excluded="failed handshakes (counted in `connection_failures`, by status)",
    ),
    MetricDefinition(
        "ttfs_ms",
        from_to="`user_message` sent → `ai_message_start` received",
        one_sample_per="completed stream",
        excluded="failed and cancelled streams",
    ),
    MetricDefinition(
        "ttfc_ms",
        from_to="`user_message` sent → first `ai_message_chunk` received (time to first chunk)",
        one_sample_per="completed stream that had a chunk",
        excluded="failed and cancelled streams; replies with no chunk",
    ),
    MetricDefinition(
        "stream_ms",
        from_to="`user_message` sent → `ai_message_complete` received",
        one_sample_per="completed stream",
        excluded="failed and cancelled streams",
    ),
    MetricDefinition(
        "inter_chunk_ms",
        from_to="one `ai_message_chunk` → the next chunk of the same stream",
        one_sample_per="gap: a stream of *n* chunks gives *n*−1 samples, pooled",
        excluded=(
            "the wait for the first chunk (that is `ttfc_ms`) and for `ai_message_complete` "
            "after the last; chunks of another stream (cross-talk, a protocol violation)"
        ),
    ),
    MetricDefinition(
        "pong_rtt_ms",
        from_to="application `ping` sent → the `pong` with its id received",
        one_sample_per="answered ping",
        excluded="unanswered pings (`pongs_missed`)",
    ),
    MetricDefinition(
        "reconnect_ms",
        from_to="abnormal close detected → next handshake accepted",
        one_sample_per="successful reconnection",
        excluded="reconnections given up (`reconnect_giveups`)",
    ),
    MetricDefinition(
        "schedule_lag_ms",
        from_to=(
            "intended start (open model) → `user_message` actually sent; in the `arrival` "
            "scenario each arrival is a new conversation, so this includes "
            "`POST /consultations` and the handshake"
        ),
        one_sample_per="stream sent in the open model, any outcome",
        excluded=(
            "closed-model streams (no intended start); arrivals dropped at the in-flight cap "
            "(`dropped_arrivals`)"
        ),
    ),
    MetricDefinition(
        "ttfc_from_intended_ms",
        from_to="intended start (open model) → first `ai_message_chunk`",
        one_sample_per="completed open-model stream that had a chunk",
        excluded="as `ttfc_ms`; closed-model streams; dropped arrivals",
    ),
    MetricDefinition(
        "connection_lifetime_ms",
        from_to="handshake accepted → connection closed (by anyone, for any reason)",
        one_sample_per="closed connection",
        excluded=(
            "connections still open when the run ends; lifetimes over 1 h are clamped to 1 h "
            "and counted in `out_of_range`"
        ),
    ),
)

_GENERATOR: tuple[MetricDefinition, ...] = (
    MetricDefinition(
        "loop_lag_ms",
        from_to=(
            "how much later than asked a periodic 0.1 s `gevent.sleep` in the load-generator "
            "process woke (0 when on time)"
        ),
    ),
    MetricDefinition(
        "gc_pause_ms",
        from_to=(
            "every garbage collection in the load-generator process, timed exactly through "
            "`gc.callbacks` (a 0.1 s sampled loop lag misses a pause that falls between two "
            "ticks)"
        ),
    ),
)

LATENCY_DEFINITIONS: MappingProxyType[str, MetricDefinition] = MappingProxyType(
    {definition.key: definition for definition in _LATENCY}
)
"""Latency metric key → definition, in the order of ``docs/metrics.md``'s latency table."""

GENERATOR_DEFINITIONS: MappingProxyType[str, MetricDefinition] = MappingProxyType(
    {definition.key: definition for definition in _GENERATOR}
)
"""Generator-health histogram key → what it measures (``docs/metrics.md``)."""
