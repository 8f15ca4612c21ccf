"""Microbenchmark: CPU per received frame, websockets' Sans-I/O parser alone vs the fast path.

The frame lever of issue 12. Frames are the reference target's own chunk frames (``FrameEncoder``
+ ``ws_frame``), fed from a reused buffer as the transport feeds them, in two shapes:

- ``trickle``: one frame per read (one chunk per TCP segment: the realistic case);
- ``burst``: reads of ~16 KiB holding many whole frames (the last one split across reads).

``websockets``: ``ClientProtocol.receive_data`` + ``events_received`` per read (before);
``fast_path``: ``FrameFastPath.receive_data`` per read (after; websockets gets anything else).
Figure: CPU nanoseconds per frame (``time.process_time``), min/median/max over repeats.

    .venv/bin/python bench/frame_parse.py [--frames 200000] [--repeats 5]

Writes bench/results/frame_parse.json (with provenance). No network.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from provenance import provenance, repeats, write_result
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from loadtest.frame_fast_path import FrameFastPath
from loadtest.target.frames import FrameEncoder, ws_frame

RESULTS = Path(__file__).resolve().parent / "results" / "frame_parse.json"
READ_BYTES = 16384


def chunk_frames(count: int) -> list[bytes]:
    encoder = FrameEncoder("message_id")
    id_part = encoder.id_part("msg_456")
    return [ws_frame(encoder.chunk(id_part, word)) for word in range(count)]


def reads(shape: str, frames: list[bytes]) -> list[bytes]:
    if shape == "trickle":
        return frames
    stream = b"".join(frames)
    return [stream[i : i + READ_BYTES] for i in range(0, len(stream), READ_BYTES)]


def open_protocol() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=2**20)


def feed_websockets(protocol: ClientProtocol) -> Callable[[memoryview], int]:
    def feed(view: memoryview) -> int:
        protocol.receive_data(view)
        return len(protocol.events_received())

    return feed


def feed_fast_path(protocol: ClientProtocol) -> Callable[[memoryview], int]:
    path = FrameFastPath(protocol)

    def feed(view: memoryview) -> int:
        return len(path.receive_data(view))

    return feed


def ns_per_frame(
    make: Callable[[ClientProtocol], Callable[[memoryview], int]],
    chunks: list[bytes],
    frame_count: int,
) -> float:
    feed = make(open_protocol())
    buffer = bytearray(READ_BYTES)
    view = memoryview(buffer)
    got = 0
    started = time.process_time()
    for chunk in chunks:
        size = len(chunk)
        buffer[:size] = chunk
        got += feed(view[:size])
    elapsed = time.process_time() - started
    assert got == frame_count, (got, frame_count)
    return elapsed / frame_count * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200000, help="frames per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    frames = chunk_frames(args.frames)
    parsers = {"websockets": feed_websockets, "fast_path": feed_fast_path}
    results = {}
    for shape in ("trickle", "burst"):
        chunks = reads(shape, frames)
        samples: dict[str, list[float]] = {name: [] for name in parsers}
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            for name, make in parsers.items():
                samples[name].append(ns_per_frame(make, chunks, len(frames)))
        figures = {name: repeats(values, 0) for name, values in samples.items()}
        results[shape] = {
            "ns_per_frame": figures,
            "speedup": round(figures["websockets"]["median"] / figures["fast_path"]["median"], 2),
        }
        for name, figure in figures.items():
            print(
                f"{shape:8s} {name:11s} {figure['median']:6.0f} ns/frame "
                f"(min {figure['min']:.0f}, max {figure['max']:.0f})"
            )
    record = {
        "benchmark": "frame_parse",
        "provenance": provenance(),
        "setup": {
            "frames": args.frames,
            "repeats": args.repeats,
            "frame_bytes": len(frames[0]),
            "burst_read_bytes": READ_BYTES,
            "unit": "CPU ns per frame (process_time)",
        },
        "results": results,
    }
    write_result(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
