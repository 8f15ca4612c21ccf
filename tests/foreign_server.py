"""A FitIQ-style server this project did not write, run as its own process: ``websockets``'
asyncio server, camelCase ids (the guide's Swift spelling), and every ``LOSE_EVERY``-th
message of a connection lost: no frame at all answers it. It keeps its own clock and, on
SIGTERM, writes what it did to the file named by argv[1]:

    {"received": N, "lost": N, "answered": N, "ttfc_ms": [server-side: received → first chunk]}

    python tests/foreign_server.py REPORT.json   # prints its port, then serves on 127.0.0.1
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

LOSE_EVERY = 10
TTFC_S = 0.030
CHUNKS = 5
GAP_S = 0.005
stats: dict[str, object] = {"received": 0, "lost": 0, "answered": 0, "ttfc_ms": []}


def frame(kind: str, reply_id: str, **extra: object) -> str:
    return json.dumps({"type": kind, "messageId": reply_id, **extra})


async def handle(ws: ServerConnection) -> None:
    seen = 0
    try:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "ping":
                await ws.send(frame("pong", message.get("messageId") or message["message_id"]))
                continue
            if message.get("type") != "user_message":
                continue
            received = time.monotonic()
            seen += 1
            stats["received"] += 1  # type: ignore[operator]
            if seen % LOSE_EVERY == 0:
                stats["lost"] += 1  # type: ignore[operator]
                continue
            reply_id = uuid.uuid4().hex
            await ws.send(frame("ai_message_start", reply_id))
            await asyncio.sleep(TTFC_S)
            for index in range(CHUNKS):
                if index:
                    await asyncio.sleep(GAP_S)
                await ws.send(frame("ai_message_chunk", reply_id, content="word "))
                if index == 0:
                    stats["ttfc_ms"].append((time.monotonic() - received) * 1000.0)  # type: ignore[union-attr]
            await ws.send(frame("ai_message_complete", reply_id))
            stats["answered"] += 1  # type: ignore[operator]
    except ConnectionClosed:
        pass


async def main(report: str) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(handle, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await stop
    with open(report, "w") as handle_:
        json.dump(stats, handle_)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
