"""Benchmark: frames handled inline where they are read vs handed through a queue.

The transport hands each frame to its handler where it was read (a readability callback in the
gevent hub, for plain TCP). The alternative many
hand-written clients use is a reader that puts frames on a queue for the user greenlet. This
measures what that hop costs, per chunk, on the real session code path (parse + stream state
machine), with the server pre-encoding whole replies so it is never the bottleneck.

    .venv/bin/python bench/transport_dispatch.py [--seconds 8] [--connections 50] [--chunks 500]

Writes bench/results/transport_dispatch.json (with provenance). Sends traffic only to 127.0.0.1,
for a bounded time.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import gevent.queue  # noqa: E402
from provenance import provenance  # noqa: E402

from loadtest.protocol import (  # noqa: E402
    MessageType,
    StreamFinished,
    StreamTracker,
    encode_message,
    parse_server_frame,
)
from loadtest.transport import ConnectOptions, WebSocketConnection  # noqa: E402

SERVER = r'''
import asyncio, json, sys
from websockets.asyncio.server import serve

CHUNKS = int(sys.argv[1])

def frame(obj):
    payload = json.dumps(obj).encode()
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload

REPLY = (frame({"type": "ai_message_start", "message_id": "r"})
         + b"".join(frame({"type": "ai_message_chunk", "message_id": "r", "content": "word "})
                    for _ in range(CHUNKS))
         + frame({"type": "ai_message_complete", "message_id": "r"}))

async def handler(ws):
    async for _ in ws:
        ws.transport.write(REPLY)  # pre-encoded: the server must outrun the client

async def main():
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
'''


class InlineHandler:
    """The shipped shape: parse and advance the stream in the reader greenlet."""

    def __init__(self) -> None:
        self.tracker = StreamTracker()
        self.done = gevent.event.Event()

    def on_text(self, payload: bytes, at: float) -> None:
        for event in self.tracker.receive(parse_server_frame(payload), at):
            if isinstance(event, StreamFinished):
                self.done.set()

    def on_binary(self, payload: bytes, at: float) -> None: ...

    def on_close(self, code: int, reason: str, at: float) -> None:
        self.done.set()


class QueueHandler(InlineHandler):
    """The common hand-written shape: the reader queues frames, another greenlet parses."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: gevent.queue.Queue = gevent.queue.Queue()
        gevent.spawn(self._consume)

    def on_text(self, payload: bytes, at: float) -> None:
        self.queue.put((payload, at))

    def _consume(self) -> None:
        while True:
            payload, at = self.queue.get()
            InlineHandler.on_text(self, payload, at)


def measure(kind: str, port: int, seconds: float, connections: int) -> dict[str, float]:
    chunks = 0
    deadline = time.perf_counter() + seconds

    def user() -> None:
        nonlocal chunks
        handler = InlineHandler() if kind == "inline" else QueueHandler()
        url = f"ws://127.0.0.1:{port}/"
        connection = WebSocketConnection.open(url, handler, ConnectOptions())
        while time.perf_counter() < deadline:
            handler.done.clear()
            stream = handler.tracker.begin("m", time.perf_counter())
            connection.send_text(encode_message(MessageType.USER_MESSAGE, "m", "hi"))
            handler.done.wait()
            chunks += stream.chunks
        connection.close()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    gevent.joinall([gevent.spawn(user) for _ in range(connections)], raise_error=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "chunks": chunks,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "chunks_per_s": round(chunks / wall),
        "chunks_per_cpu_s": round(chunks / cpu),
        "us_per_chunk_cpu": round(cpu / chunks * 1e6, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench/results/transport_dispatch.json"))
    args = parser.parse_args()
    origin = provenance(["msgspec"])
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.chunks)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        for kind in ("inline", "queue"):  # warm-up: imports, allocator, TCP buffers
            measure(kind, port, 1.0, args.connections)
        results = {
            kind: measure(kind, port, args.seconds, args.connections)
            for kind in ("inline", "queue")
        }
    finally:
        server.terminate()
        server.wait(5)
    record = {
        "benchmark": "transport_dispatch",
        "provenance": origin,
        "connections": args.connections,
        "chunks_per_reply": args.chunks,
        "results": results,
        "queue_overhead_pct": round(
            (results["queue"]["us_per_chunk_cpu"] / results["inline"]["us_per_chunk_cpu"] - 1)
            * 100,
            1,
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
