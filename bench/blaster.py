"""A FitIQ-style chat server that costs next to nothing per chunk: a benchmark measures the client.

The reference target tops out near 45k chunks per server CPU-second in trickle
(``bench/results/target_ceiling.json``): a client that does more per core than that cannot be
saturated by it on a two-core machine. This server keeps the work per chunk to one
``transport.write`` of bytes made once per reply:

- ``websockets``' asyncio server does the handshake, reads the client's frames (masked,
  possibly fragmented), answers app-level ``ping`` with ``pong`` and closes;
- the reply's three distinct frames (start, one chunk, complete) are serialized once per reply
  by ``websockets.frames.Frame.serialize`` (server frames are unmasked, so the same chunk bytes
  can be written again and again) and written straight to the connection's transport:

  - ``trickle``: one tick every ``gap_ms`` writes the next frame of every reply in flight, one
    frame per connection per tick, so each chunk leaves in its own TCP segment (TCP_NODELAY is
    asyncio's default) and a client that keeps up reads one chunk per read;
  - ``burst``: the whole reply (start, ``chunks`` chunks, complete) in one write.

Counts chunks *consumed*: a reply's chunks are counted when the same connection sends its next
``user_message`` (the client only does that after reading ``ai_message_complete``, think time 0),
so chunks still queued in a socket buffer at the end of a window are never counted as delivered.

    with Blaster(mode="trickle", chunks=40, gap_ms=5, cpu=0) as blaster:
        ... drive ws://127.0.0.1:{blaster.port}/ws/consultation ...
        blaster.consumed_chunks()

Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import uuid
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import Any, Literal

Mode = Literal["trickle", "burst"]


def _serialize(frame: dict[str, Any]) -> bytes:
    from websockets.frames import Frame, Opcode

    payload = json.dumps(frame, separators=(",", ":")).encode()
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


@dataclass(slots=True)
class _Reply:
    """One reply in flight (trickle): what is left to write."""

    transport: Any
    chunk: bytes
    complete: bytes
    chunks_left: int


@dataclass
class _Server:
    mode: Mode
    chunks: int
    gap_s: float
    consumed: Any  # multiprocessing RawValue('q')
    in_flight: list[_Reply] = field(default_factory=list)

    def reply_frames(self, reply_id: str) -> tuple[bytes, bytes, bytes]:
        stamp = "2026-12-02T00:00:00Z"
        return (
            _serialize({"type": "ai_message_start", "message_id": reply_id, "timestamp": stamp}),
            _serialize({"type": "ai_message_chunk", "content": "word ", "message_id": reply_id,
                        "timestamp": stamp}),
            _serialize({"type": "ai_message_complete", "message_id": reply_id,
                        "timestamp": stamp}),
        )  # fmt: skip

    async def handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        transport = ws.transport
        owed = 0  # chunks of the previous reply, counted once the client asks again
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    pong_id = message.get("message_id", message.get("messageId"))
                    await ws.send(json.dumps({"type": "pong", "message_id": pong_id}))
                    continue
                if kind != "user_message":
                    continue
                self.consumed.value += owed
                owed = self.chunks
                start, chunk, complete = self.reply_frames(uuid.uuid4().hex)
                if self.mode == "burst":
                    transport.write(b"".join((start, chunk * self.chunks, complete)))
                else:
                    transport.write(start)
                    self.in_flight.append(_Reply(transport, chunk, complete, self.chunks))
        except ConnectionClosed:
            pass

    async def tick_forever(self) -> None:
        """Trickle: the next frame of every reply in flight, once per ``gap_s``."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.gap_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            still: list[_Reply] = []
            for reply in self.in_flight:
                if reply.transport.is_closing():
                    continue
                try:
                    if reply.chunks_left:
                        reply.transport.write(reply.chunk)
                        reply.chunks_left -= 1
                        still.append(reply)
                    else:
                        reply.transport.write(reply.complete)
                except RuntimeError:
                    # websockets half-closed it (write_eof) while the client was leaving:
                    # the reply is dropped, the ticker must go on for everyone else.
                    continue
            self.in_flight = still


def _serve(
    mode: Mode, chunks: int, gap_s: float, cpu: int | None, consumed: Any, port: Synchronized
) -> None:
    from websockets.asyncio.server import serve

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    server = _Server(mode, chunks, gap_s, consumed)

    async def main() -> None:
        async with serve(
            server.handle, "127.0.0.1", 0, compression=None, ping_interval=None,
            max_queue=None, backlog=4096,
        ) as listening:  # fmt: skip
            ticker = asyncio.create_task(server.tick_forever()) if mode == "trickle" else None
            port.value = listening.sockets[0].getsockname()[1]
            try:
                await asyncio.Future()
            finally:
                if ticker is not None:
                    ticker.cancel()

    asyncio.run(main())


class Blaster:
    """The server in a child process (its own core with ``cpu``), as a context manager."""

    def __init__(
        self, mode: Mode, chunks: int = 40, gap_ms: float = 5.0, cpu: int | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._consumed = context.RawValue("q", 0)
        self._port = context.Value("i", 0)
        self._process = context.Process(
            target=_serve,
            args=(mode, chunks, gap_ms / 1000.0, cpu, self._consumed, self._port),
            daemon=True,
        )
        self.port = 0

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def consumed_chunks(self) -> int:
        return int(self._consumed.value)

    def __enter__(self) -> Blaster:
        import time

        self._process.start()
        deadline = time.monotonic() + 30
        while not self._port.value:
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the blaster did not start")
            time.sleep(0.02)
        self.port = int(self._port.value)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
