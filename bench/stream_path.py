"""Microbenchmark: CPU per chunk and per stream of the steps this round of issue 12 cut.

Each step is timed the way it is done now and the way it was done before (copied here, so the
comparison outlives the change), in one process, interleaved over ``--repeats``; the figure is
CPU µs per operation (``time.process_time``), min/median/max over repeats. No network.

- ``track_chunk``: one chunk of the open reply, decoded and tracked:
  ``receive(parse_server_frame(...))`` (before) vs ``StreamTracker.receive_text`` (now);
- ``encode_message``: one ``user_message`` with a fresh id: ``json.dumps``, ``strftime`` and
  ``uuid4`` (before) vs ``encode_message`` and ``random_id`` (now);
- ``text_frame``: that message framed for the wire: websockets' ``Protocol.send_text``
  (``secrets.token_bytes`` per frame) vs ``client_text_frame`` with a pooled key;
- ``record_gaps``: a 40-chunk reply's 39 gaps into a histogram: counted one by one in Python
  (before) vs kept and counted vectorised when read (now; the read is included, once per
  ``--gaps-per-read`` streams, as a window closing once a second does);
- ``settle_gaps``: those 39 gaps kept and counted vectorised 512 at a time (before) vs
  :data:`~loadtest.metrics.histogram.SETTLE_EVERY` at a time (now), no read in between;
- ``build_row``: a completed stream's ``streams.csv`` row as the recorder builds it, with
  each duration rounded to 1 µs (before, an upper bound: see :func:`row_before`) vs unrounded
  (now: the file writes 1 µs anyway);
- ``write_row``: that row formatted into cells, one formatter call per cell (before) vs
  only the cells csv would not write the same (now), with a flush every 500 rows.

    .venv/bin/python bench/stream_path.py [--loops 20000] [--repeats 5]

Writes bench/results/stream_path.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provenance import provenance, repeats, write_result
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from loadtest.entropy import mask_key, random_id
from loadtest.frame_fast_path import client_text_frame
from loadtest.metrics.histogram import SETTLE_EVERY, LatencyHistogram
from loadtest.metrics.stream_rows import (
    _FORMAT_BY_KIND,
    COLUMN_TYPES,
    OUTCOMES,
    StreamRowWriter,
)
from loadtest.protocol import (
    MessageType,
    Outcome,
    Stream,
    StreamTracker,
    encode_message,
    parse_server_frame,
)
from loadtest.target.frames import FrameEncoder
from loadtest.users.recording import SessionRecorder

RESULTS = Path(__file__).resolve().parent / "results" / "stream_path.json"
PROMPT = "How should I split my protein across the day?"


def encode_before(content: str) -> bytes:
    """``encode_message`` as it was: a uuid4 id, strftime, json.dumps."""
    moment = datetime.now(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    body = {"type": "user_message", "content": content, "message_id": uuid.uuid4().hex,
            "timestamp": stamp}  # fmt: skip
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def encode_now(content: str) -> bytes:
    return encode_message(MessageType.USER_MESSAGE, random_id(), content)


#: Each column with its kind, in file order: the writer before called a formatter per cell.
CELLS_BEFORE = tuple(COLUMN_TYPES.items())
#: The durations ``SessionRecorder._row`` rounded to 1 µs before the file did it again.
DURATIONS = ("schedule_lag_ms", "connect_ms", "ttfs_ms", "ttfc_ms", "stream_ms", "max_gap_ms")


def write_row_before(pending: list[list[str]], row: dict[str, Any]) -> None:
    """``StreamRowWriter.write`` as it was: one formatter call per cell."""
    unknown = row.keys() - COLUMN_TYPES.keys()
    if unknown:
        raise ValueError(f"unknown stream row columns {sorted(unknown)}")
    outcome = row.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"bad outcome {outcome!r}")
    get = row.get
    pending.append([_FORMAT_BY_KIND[kind](get(column)) for column, kind in CELLS_BEFORE])


def row_before(recorder: SessionRecorder, stream: Stream) -> dict[str, Any]:
    """``SessionRecorder._row`` as it was: the row of now with its durations rounded to 1 µs
    (six dict stores more than rounding inside the literal did, ~0.3 µs: an upper bound)."""
    row = recorder._row(stream, None)
    for key in DURATIONS:
        value = row[key]
        row[key] = None if value is None else round(value, 3)
    return row


def completed_stream() -> Stream:
    """A 40-chunk reply as the tracker leaves it (moments near now, as in a run)."""
    sent = time.perf_counter()
    stream = Stream("a1b2c3d4e5f6", sent, reply_id="msg_456", start_at=sent + 0.0004)
    for index in range(40):
        stream.add_chunk(sent + 0.05 + index * 0.002, "word ")
    stream.end_at, stream.outcome = sent + 0.13, Outcome.COMPLETED
    return stream


def open_tracker(reply_id: str) -> StreamTracker:
    tracker = StreamTracker()
    stream = tracker.begin("u1", 0.0)
    stream.reply_id, stream.start_at = reply_id, 0.0
    return tracker


def us_per_op(operation: Callable[[], object], loops: int) -> float:
    started = time.process_time()
    for _ in range(loops):
        operation()
    return (time.process_time() - started) / loops * 1e6


def steps(loops: int, gaps_per_read: int) -> dict[str, dict[str, Callable[[], Any]]]:
    encoder = FrameEncoder("message_id")
    chunk = encoder.chunk(encoder.id_part("msg_456"), 7)
    trackers = {"before": open_tracker("msg_456"), "now": open_tracker("msg_456")}
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN)
    payload = encode_now(PROMPT)
    gaps_ms = [2.0 + index * 0.001 for index in range(39)]
    histograms = {"before": LatencyHistogram(), "now": LatencyHistogram()}
    recorded = {"now": 0}

    def track_before() -> object:
        tracker = trackers["before"]
        if tracker.current is not None and tracker.current.chunks > loops:
            trackers["before"] = tracker = open_tracker("msg_456")  # bounded gaps list
        return tracker.receive(parse_server_frame(chunk), 1.0)

    def track_now() -> object:
        tracker = trackers["now"]
        if tracker.current is not None and tracker.current.chunks > loops:
            trackers["now"] = tracker = open_tracker("msg_456")
        return tracker.receive_text(chunk, 1.0)

    def frame_before() -> bytes:
        protocol.send_text(payload)
        return b"".join(protocol.data_to_send())

    def gaps_before() -> None:
        histograms["before"]._record_now(gaps_ms)

    def gaps_now() -> None:
        histograms["now"].record_many_ms(gaps_ms)
        recorded["now"] += 1
        if recorded["now"] % gaps_per_read == 0:
            _ = histograms["now"].count  # a read: the window closing counts what it kept

    def encode_old() -> bytes:
        return encode_before(PROMPT)

    def encode_new() -> bytes:
        return encode_now(PROMPT)

    def frame_now() -> bytes:
        return client_text_frame(payload, mask_key())

    def settler(every: int) -> Callable[[], None]:
        histogram, kept = LatencyHistogram(), []

        def settle() -> None:
            kept.extend(gaps_ms)
            if len(kept) >= every:
                histogram._record_vectorised(kept)
                kept.clear()

        return settle

    recorder = SessionRecorder(sink=None, user=7, worker="0")  # type: ignore[arg-type]
    recorder.consultation_id, recorder.last_connect_ms = "c-1", 3.25
    stream = completed_stream()
    row = recorder._row(stream, None)
    scratch = tempfile.mkdtemp()
    writer = StreamRowWriter(Path(scratch) / "streams.csv")
    written: list[list[str]] = []

    def write_before() -> None:
        write_row_before(written, row)
        if len(written) >= 500:
            writer._csv.writerows(written)
            written.clear()

    def write_now() -> None:
        writer.write(row)
        if writer.pending >= 500:
            writer.flush()

    return {
        "track_chunk": {"before": track_before, "now": track_now},
        "encode_message": {"before": encode_old, "now": encode_new},
        "text_frame": {"before": frame_before, "now": frame_now},
        "record_gaps": {"before": gaps_before, "now": gaps_now},
        "settle_gaps": {"before": settler(512), "now": settler(SETTLE_EVERY)},
        "build_row": {
            "before": lambda: row_before(recorder, stream),
            "now": lambda: recorder._row(stream, None),
        },
        "write_row": {"before": write_before, "now": write_now},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=20000, help="operations per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gaps-per-read", type=int, default=500, help="streams per window")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    plan = steps(args.loops, args.gaps_per_read)
    samples = {step: {way: [] for way in ways} for step, ways in plan.items()}
    for _ in range(args.repeats):  # interleaved, so drift hits both ways alike
        for step, ways in plan.items():
            for way, operation in ways.items():
                samples[step][way].append(us_per_op(operation, args.loops))
    figures: dict[str, Any] = {}
    for step, ways in samples.items():
        before, now = repeats(ways["before"]), repeats(ways["now"])
        figures[step] = {
            "before_us": before,
            "now_us": now,
            "speedup": round(before["median"] / now["median"], 2),
        }
    record = {
        "benchmark": "stream_path",
        "provenance": provenance(["msgspec", "hdrhistogram", "numpy"]),
        "setup": {
            "loops": args.loops,
            "repeats": args.repeats,
            "gaps_per_read": args.gaps_per_read,
            "unit": "CPU µs per operation (process_time)",
        },
        "steps": figures,
    }
    write_result(args.out, record)
    for step, figure in figures.items():
        print(
            f"{step:15s} {figure['before_us']['median']:7.2f} -> {figure['now_us']['median']:6.2f}"
            f" µs  ({figure['speedup']}x)"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
