"""Microbenchmark: CPU per server frame to turn its payload into a typed message.

The decode lever of issue 12. Frames are the reference target's own bytes (``FrameEncoder``:
one reply of ``ai_message_start``, ``--chunks`` chunks, ``ai_message_complete``, a pong), in both
id spellings. Each decoder parses every frame of the reply ``--repeats`` times ``--loops`` over;
the figure is CPU nanoseconds per frame (``time.process_time``), min/median/max over repeats.

- ``json_dataclass``: strict UTF-8, ``json.loads``, hand checks, a frozen dataclass (the parser
  as it was before this lever, copied here so the comparison outlives the change);
- ``json_struct``: the same with the message a frozen ``msgspec.Struct``
  (``parse_server_frame_reference``, today's fallback);
- ``orjson_struct``: ``orjson.loads`` and the same checks (skipped if orjson is not installed);
- ``msgspec``: the shipped ``parse_server_frame`` (typed msgspec decode, reference fallback).

    .venv/bin/python bench/decode_frames.py [--loops 20000] [--repeats 5] [--chunks 40]

Writes bench/results/decode_frames.json (with provenance). No network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import provenance, repeats, write_result

from loadtest.protocol import (
    TYPES_NEEDING_ID,
    MessageType,
    ServerMessage,
    Violation,
    ViolationKind,
    parse_server_frame,
    parse_server_frame_reference,
)
from loadtest.protocol.messages import _SERVER_TYPE_BY_NAME
from loadtest.target.frames import FrameEncoder

RESULTS = Path(__file__).resolve().parent / "results" / "decode_frames.json"


@dataclass(frozen=True, slots=True)
class DataclassMessage:
    """The message type as it was: a frozen, slotted dataclass."""

    type: MessageType
    message_id: str | None
    content: str | None = None
    metadata: dict[str, Any] | None = None


#: What every decoder must agree on (later fields of ServerMessage, such as an error frame's
#: ``code``, are not in the old dataclass and not in these frames).
COMPARED_FIELDS = ("type", "message_id", "content", "metadata")


def json_dataclass(payload: bytes) -> DataclassMessage | Violation:
    """The parser before the decode lever (error paths shortened: only valid frames are fed)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Violation(ViolationKind.INVALID_UTF8)
    try:
        data = json.loads(text)
    except ValueError:
        return Violation(ViolationKind.MALFORMED_JSON)
    if not isinstance(data, dict):
        return Violation(ViolationKind.MALFORMED_JSON)
    raw_type = data.get("type")
    message_type = _SERVER_TYPE_BY_NAME.get(raw_type) if isinstance(raw_type, str) else None
    if message_type is None:
        return Violation(ViolationKind.UNKNOWN_TYPE)
    message_id = data.get("message_id")
    if message_id is None:
        message_id = data.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        message_id = str(message_id)
    if not message_id and message_type in TYPES_NEEDING_ID:
        return Violation(ViolationKind.MISSING_ID)
    content = data.get("content")
    metadata = data.get("metadata")
    return DataclassMessage(
        type=message_type,
        message_id=message_id or None,
        content=content if isinstance(content, str) else None,
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def orjson_decoder() -> Callable[[bytes], ServerMessage | Violation] | None:
    try:
        import orjson
    except ImportError:
        return None

    def orjson_struct(payload: bytes) -> ServerMessage | Violation:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return parse_server_frame_reference(payload)
        if type(data) is not dict:
            return parse_server_frame_reference(payload)
        message_type = _SERVER_TYPE_BY_NAME.get(data.get("type"))
        message_id = data.get("message_id")
        if message_id is None:
            message_id = data.get("messageId")
        if message_type is None or type(message_id) is not str or not message_id:
            return parse_server_frame_reference(payload)
        content, metadata = data.get("content"), data.get("metadata")
        return ServerMessage(
            message_type,
            message_id,
            content if type(content) is str else None,
            metadata if type(metadata) is dict else None,
        )

    return orjson_struct


def reply_frames(chunks: int) -> list[bytes]:
    """One reply in each id spelling, as the reference target sends them, plus a pong each."""
    frames = []
    for id_key in ("message_id", "messageId"):
        encoder = FrameEncoder(id_key)
        id_part = encoder.id_part("msg_456")
        frames.append(encoder.start(id_part))
        frames += [encoder.chunk(id_part, word) for word in range(chunks)]
        frames.append(encoder.complete(id_part))
        frames.append(encoder.pong("ping_1"))
    return frames


def ns_per_frame(decode: Callable[[bytes], object], frames: list[bytes], loops: int) -> float:
    started = time.process_time()
    for _ in range(loops):
        for frame in frames:
            decode(frame)
    return (time.process_time() - started) / (loops * len(frames)) * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=20000, help="replies per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=40, help="chunks per reply")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    frames = reply_frames(args.chunks)
    decoders: dict[str, Callable[[bytes], object]] = {
        "json_dataclass": json_dataclass,
        "json_struct": parse_server_frame_reference,
        "msgspec": parse_server_frame,
    }
    orjson_struct = orjson_decoder()
    if orjson_struct is not None:
        decoders["orjson_struct"] = orjson_struct
    for name, decode in decoders.items():  # same verdicts, or the comparison is void
        for frame in frames:
            result = decode(frame)
            assert not isinstance(result, Violation), (name, frame, result)
            expected = parse_server_frame(frame)
            assert all(
                getattr(result, field) == getattr(expected, field) for field in COMPARED_FIELDS
            ), name
    samples: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(args.repeats):  # interleaved, so drift hits every decoder alike
        for name, decode in decoders.items():
            samples[name].append(ns_per_frame(decode, frames, args.loops // args.repeats or 1))
    figures = {name: repeats(values, 0) for name, values in samples.items()}
    before = figures["json_dataclass"]["median"]
    record = {
        "benchmark": "decode_frames",
        "provenance": provenance(["msgspec", "orjson"]),
        "setup": {
            "frames_per_loop": len(frames),
            "chunks_per_reply": args.chunks,
            "loops": args.loops,
            "repeats": args.repeats,
            "unit": "CPU ns per frame (process_time)",
        },
        "ns_per_frame": figures,
        "speedup_vs_json_dataclass": {
            name: round(before / figure["median"], 2) for name, figure in figures.items()
        },
    }
    write_result(args.out, record)
    for name, figure in figures.items():
        print(
            f"{name:15s} {figure['median']:7.0f} ns/frame  (min {figure['min']:.0f}, "
            f"max {figure['max']:.0f})"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
