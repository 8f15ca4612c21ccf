"""Turn one session's reports into metrics, counts, stream rows and Locust request events.

A :class:`SessionRecorder` is the :class:`~loadtest.session.SessionObserver` of one simulated
user. It writes into the process-wide :class:`MetricsSink` (histograms per window, counters,
rows) and fires one Locust request event per stream and metric, never per chunk, so Locust's
own UI and CSVs show the run too, while our exact numbers come from the histograms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any, Protocol

from loadtest.protocol import Outcome, Stream, ViolationKind
from loadtest.utc import utc_micros


def epoch_of(stamp: float) -> float:
    """The wall-clock moment of a recent :func:`perf_counter` stamp (for rows humans read).

    The offset between the two clocks is read now, not once per process: NTP slews the wall
    clock, and over a multi-day soak a fixed offset would drift seconds away from the
    ``time.time()`` stamps of ``events.jsonl``. Rows are made when their stream ends, so the
    stamp is at most one stream old.
    """
    return time.time() - perf_counter() + stamp


class MetricsSink(Protocol):
    """The process's recorder: windowed histograms, counters, and stream rows."""

    def record(self, metric: str, value_ms: float) -> None: ...

    def record_many(self, metric: str, values_ms: Iterable[float]) -> None: ...

    def count(self, key: str, n: int = 1, by: str | None = None) -> None: ...

    def row(self, row: dict[str, Any]) -> None:
        """Keep one stream's row: the sink takes the dict as it is (no copy per stream), so
        the caller hands over a fresh one."""

    def event(self, event: Mapping[str, Any]) -> None: ...


RequestFirer = Callable[..., None]
"""``environment.events.request.fire``, or ``None`` outside Locust."""


class StreamFailed(Exception):
    """What Locust's failure table shows for a failed stream (kind and close code)."""


class SessionRecorder:
    """Records everything one user's session reports.

    Args:
        sink: the process-wide metrics sink.
        user: this user's index, for rows.
        worker: this process's name, for rows.
        fire_request: Locust's request event, or ``None``.
        on_connect_attempt: called at each handshake's outcome, connected or failed (the
            user's ramp ticket: :mod:`loadtest.users.ramp`).
    """

    def __init__(
        self,
        sink: MetricsSink,
        *,
        user: int,
        worker: str,
        fire_request: RequestFirer | None = None,
        on_connect_attempt: Callable[[], None] | None = None,
    ) -> None:
        self._sink = sink
        self._fire = fire_request
        self._on_connect_attempt = on_connect_attempt
        self.user = user
        self.worker = worker
        self.consultation_id: str | None = None
        self.last_connect_ms: float | None = None
        #: Open model: when this stream was meant to start (perf_counter), set by the user.
        self.intended_start: float | None = None
        self.retried = False
        self.stream_seq = 0

    def _lifecycle(self, kind: str, **details: Any) -> None:
        """One row of ``events.jsonl``: connection lifecycle, never per message."""
        self._sink.event(
            {
                "time_utc": utc_micros(time.time()),
                "worker": self.worker,
                "user": self.user,
                "consultation_id": self.consultation_id,
                "kind": kind,
                **details,
            }
        )

    def _event(
        self,
        name: str,
        ms: float,
        length: int = 0,
        error: str | None = None,
        request_type: str = "WS",
    ) -> None:
        if self._fire is not None:
            self._fire(
                request_type=request_type,
                name=name,
                response_time=ms,
                response_length=length,
                exception=StreamFailed(error) if error else None,
                context={},
            )

    # --- SessionObserver -------------------------------------------------------------

    def consultation_ready(self, consultation_id: str) -> None:
        self.consultation_id = consultation_id

    def connected(
        self, connect_ms: float, reconnect_ms: float | None, receive_clock: str
    ) -> None:
        if self._on_connect_attempt is not None:
            self._on_connect_attempt()
        sink = self._sink
        sink.count("connections_opened", by=receive_clock)
        sink.record("connect_ms", connect_ms)
        self.last_connect_ms = connect_ms
        self._event("connect_ms", connect_ms)
        if reconnect_ms is not None:
            sink.count("reconnects")
            sink.record("reconnect_ms", reconnect_ms)
            self._event("reconnect_ms", reconnect_ms)
        self._lifecycle(
            "reconnect" if reconnect_ms is not None else "open",
            connect_ms=_ms(connect_ms),
            reconnect_ms=_ms(reconnect_ms),
        )

    def connect_failed(self, kind: str) -> None:
        if self._on_connect_attempt is not None:
            self._on_connect_attempt()
        self._sink.count("connection_failures", by=kind)
        self._event("connect_ms", 0.0, error=f"handshake {kind}")
        self._lifecycle("open_failed", status=kind)

    def disconnected(self, close_code: int) -> None:
        self._sink.count("disconnects", by=str(close_code))

    def connection_closed(self, lifetime_s: float, initiator: str, close_code: int) -> None:
        self._sink.count("connections_closed", by=initiator)
        self._sink.record("connection_lifetime_ms", lifetime_s * 1000.0)
        self._lifecycle(
            "close", initiator=initiator, code=close_code, lifetime_ms=_ms(lifetime_s * 1000.0)
        )

    def stream_started(self) -> None:
        self._sink.count("streams_started")

    def stream_finished(self, stream: Stream) -> None:
        sink = self._sink
        self.stream_seq += 1
        outcome = stream.outcome
        ttfc = stream.ttfc_ms
        lag_ms = None
        if self.intended_start is not None:
            lag_ms = (stream.sent_at - self.intended_start) * 1000.0
            sink.record("schedule_lag_ms", lag_ms)
        if outcome is Outcome.COMPLETED:
            sink.count("streams_completed")
            ttfs = stream.ttfs_ms
            if ttfs is not None:
                sink.record("ttfs_ms", ttfs)
                self._event("ttfs_ms", ttfs)
            if ttfc is not None:
                sink.record("ttfc_ms", ttfc)
                self._event("ttfc_ms", ttfc, stream.characters)
                if self.intended_start is not None and stream.first_chunk_at is not None:
                    from_intended = (stream.first_chunk_at - self.intended_start) * 1000.0
                    sink.record("ttfc_from_intended_ms", from_intended)
            stream_ms = stream.stream_ms
            if stream_ms is not None:
                sink.record("stream_ms", stream_ms)
                self._event("stream_ms", stream_ms, stream.characters)
            if stream.gaps:  # once per stream, not once per gap through four calls
                sink.record_many("inter_chunk_ms", [gap * 1000.0 for gap in stream.gaps])
        elif outcome is Outcome.FAILED:
            sink.count("streams_failed", by=stream.error_kind or "unknown")
            elapsed = ((stream.end_at or perf_counter()) - stream.sent_at) * 1000.0
            kind = stream.error_kind or "unknown"
            if stream.close_code is not None:
                kind = f"{kind} ({stream.close_code})"
            self._event("stream_ms", elapsed, stream.characters, error=kind)
        else:
            sink.count("streams_cancelled")
        if self.retried:
            sink.count("streams_retried")
        sink.row(self._row(stream, lag_ms))
        self.intended_start = None
        self.retried = False

    def _row(self, stream: Stream, lag_ms: float | None) -> dict[str, Any]:
        """The stream's row, durations unrounded: ``streams.csv`` writes them to 1 µs."""
        intended = self.intended_start
        return {
            "worker": self.worker,
            "user": self.user,
            "consultation_id": self.consultation_id,
            "stream_seq": self.stream_seq,
            "intended_start_utc": utc_micros(epoch_of(intended)) if intended is not None else None,
            "sent_utc": utc_micros(epoch_of(stream.sent_at)),
            "schedule_lag_ms": lag_ms,
            "connect_ms": self.last_connect_ms,
            "ttfs_ms": stream.ttfs_ms,
            "ttfc_ms": stream.ttfc_ms,
            "stream_ms": stream.stream_ms,
            "chunks": stream.chunks,
            "characters": stream.characters,
            "max_gap_ms": stream.max_gap_ms,
            "outcome": stream.outcome.value if stream.outcome else None,
            "error_kind": stream.error_kind,
            "close_code": stream.close_code,
            "retried": self.retried,
            "message_id": stream.user_message_id,
            "violations": stream.violations,
        }

    def violation(self, kind: ViolationKind) -> None:
        self._sink.count("protocol_violations", by=kind.value)

    def error_frame(self, code: str) -> None:
        self._sink.count("error_frames", by=code)

    def template_created(self) -> None:
        self._sink.count("templates_created")

    def ping_sent(self) -> None:
        self._sink.count("pings_sent")

    def pong_received(self, rtt_ms: float) -> None:
        self._sink.count("pongs_received")
        self._sink.record("pong_rtt_ms", rtt_ms)

    def pong_missed(self) -> None:
        self._sink.count("pongs_missed")

    def reconnect_attempt(self) -> None:
        self._sink.count("reconnect_attempts")

    def reconnect_gave_up(self) -> None:
        self._sink.count("reconnect_giveups")
        self._lifecycle("giveup")

    def token_refreshed(self) -> None:
        self._sink.count("token_refreshes")
        self._lifecycle("token_refresh")

    def rate_step(self, details: Mapping[str, Any]) -> None:
        """One ``events.jsonl`` row (kind ``rate_step``) per probing user and rate step: what
        it sent at that rate and what the server refused (:mod:`loadtest.rate_probe`)."""
        self._lifecycle("rate_step", **details)

    def rest_call(self, name: str, elapsed_ms: float, error: str | None) -> None:
        self._event(name, elapsed_ms, error=error, request_type="HTTP")
        if error is not None:
            self._sink.count("rest_failures", by=f"{name} {error}")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
