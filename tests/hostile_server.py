"""Servers that break the FitIQ protocol on purpose, for tests. Not our target.

:class:`HostileServer` is the ``websockets`` asyncio server (another implementation than the
reference target, so it shares none of our assumptions) running a *script* per connection,
chosen by the first segment of the request path: ``ws://127.0.0.1:PORT/flood/ws/consultation``
runs :func:`flood`. Each script waits for the client's first ``user_message`` (so a stream is
open) and then misbehaves in one way; later messages get well-formed replies.

Its loop runs in a background thread of the test process. The process is gevent-patched, so
that thread is a greenlet and the loop's selector yields to the hub: the client greenlets
under test run beside it (checked with gevent 26; the reference target's tests still use
subprocesses, because its aiohttp server must also be killable and restartable).

:class:`RawServer` is for what ``websockets`` will not do: accept TCP and never answer the HTTP
handshake, or complete the handshake and then ignore the close frame forever.

Everything listens on 127.0.0.1, port 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import gevent
import gevent.event
from gevent import socket
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.server import ServerProtocol

#: A script gets the connection and the fresh id to give its reply.
Script = Callable[[ServerConnection, str], Awaitable[None]]
#: Larger than the ``max_message_bytes`` the tests give the client.
OVERSIZED_BYTES = 64 * 1024
FLOOD_CHUNKS = 5000


def _frame(kind: str, message_id: str | None, key: str = "message_id", **extra: Any) -> str:
    body: dict[str, Any] = {"type": kind, **extra}
    if message_id is not None:
        body[key] = message_id
    return json.dumps(body)


async def _reply(ws: ServerConnection, reply_id: str, chunks: int = 2, key: str = "message_id",
                 ) -> None:
    """A well-formed reply with a fresh id, as the backend sends it."""
    await ws.send(_frame("ai_message_start", reply_id, key))
    for _ in range(chunks):
        await ws.send(_frame("ai_message_chunk", reply_id, key, content="word "))
    await ws.send(_frame("ai_message_complete", reply_id, key))


async def _user_message(ws: ServerConnection) -> None:
    """Wait for the next ``user_message``."""
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") == "user_message":
            return
        if message.get("type") == "ping":  # keep a heartbeat happy
            await ws.send(_frame("pong", message.get("message_id")))


async def well_behaved(ws: ServerConnection, reply_id: str) -> None:
    await _reply(ws, reply_id)


async def non_json(ws: ServerConnection, reply_id: str) -> None:
    await ws.send("this is {not json")
    await _reply(ws, reply_id)


async def binary(ws: ServerConnection, reply_id: str) -> None:
    await ws.send(_frame("ai_message_chunk", reply_id, content="x").encode())
    await _reply(ws, reply_id)


async def invalid_utf8(ws: ServerConnection, reply_id: str) -> None:
    """A text frame that is not UTF-8 (RFC 6455 forbids it)."""
    await ws.send(_frame("ai_message_start", reply_id))
    await ws.send(b'{"type": "ai_message_chunk", "content": "\xff\xfe"}', text=True)
    await ws.send(_frame("ai_message_chunk", reply_id, content="fine"))
    await ws.send(_frame("ai_message_complete", reply_id))


async def bad_framing(ws: ServerConnection, reply_id: str) -> None:
    """A frame with a reserved opcode (0x3): websockets fails the connection with 1002."""
    await ws.send(_frame("ai_message_start", reply_id))
    ws.transport.write(b"\x83\x00")
    await ws.wait_closed()


async def invalid_close_reason(ws: ServerConnection, reply_id: str) -> None:
    """A close frame whose reason is not UTF-8: websockets fails the connection with 1007."""
    await ws.send(_frame("ai_message_start", reply_id))
    ws.transport.write(b"\x88\x04\x03\xe8\xff\xfe")  # close 1000, reason b"\xff\xfe"
    await ws.wait_closed()


async def oversized(ws: ServerConnection, reply_id: str) -> None:
    await ws.send(_frame("ai_message_start", reply_id))
    await ws.send(_frame("ai_message_chunk", reply_id, content="x" * OVERSIZED_BYTES))
    await ws.wait_closed()


async def unknown_type(ws: ServerConnection, reply_id: str) -> None:
    await ws.send(_frame("ai_thinking", reply_id))
    await _reply(ws, reply_id)


async def wrong_id(ws: ServerConnection, reply_id: str) -> None:
    await ws.send(_frame("ai_message_start", reply_id))
    await ws.send(_frame("ai_message_chunk", "somebody_else", content="stray"))
    await ws.send(_frame("ai_message_chunk", reply_id, content="mine"))
    await ws.send(_frame("ai_message_complete", reply_id))


async def missing_id(ws: ServerConnection, reply_id: str) -> None:
    await ws.send(_frame("ai_message_start", reply_id))
    await ws.send(_frame("ai_message_chunk", None, content="anonymous"))
    await ws.send(_frame("ai_message_chunk", reply_id, content="mine"))
    await ws.send(_frame("ai_message_complete", reply_id))


async def camel_case(ws: ServerConnection, reply_id: str) -> None:
    """Not a violation: the guide's Swift client spells the id ``messageId``."""
    await _reply(ws, reply_id, key="messageId")


async def flood(ws: ServerConnection, reply_id: str) -> None:
    await _reply(ws, reply_id, chunks=FLOOD_CHUNKS)


async def chunks_after_complete(ws: ServerConnection, reply_id: str) -> None:
    await _reply(ws, reply_id)
    for _ in range(3):
        await ws.send(_frame("ai_message_chunk", reply_id, content="zombie"))


async def mute(ws: ServerConnection, reply_id: str) -> None:
    """Handshake done, message read, never a reply (protocol pings are still answered)."""
    await ws.wait_closed()


SCRIPTS: dict[str, Script] = {
    script.__name__: script
    for script in (well_behaved, non_json, binary, invalid_utf8, bad_framing,
                   invalid_close_reason, oversized, unknown_type, wrong_id, missing_id,
                   camel_case, flood, chunks_after_complete, mute)
}


class HostileServer:
    """The scripted ``websockets`` server, started on entry and stopped on exit."""

    def __init__(self) -> None:
        self.port = 0
        self._reply_ids = itertools.count(1)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        # A daemon so that a test that fails mid-way cannot hang the interpreter at exit.
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def url(self, script: str) -> str:
        """The base URL (``--host`` style) whose connections run ``script``."""
        assert script in SCRIPTS, script
        return f"ws://127.0.0.1:{self.port}/{script}"

    def ws_url(self, script: str) -> str:
        return f"{self.url(script)}/ws/consultation?consultation_id=c1"

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        script = SCRIPTS[ws.request.path.strip("/").split("/")[0]]
        with contextlib.suppress(ConnectionClosed):  # the client leaving is no error here
            # Misbehave on the first message only, then answer well: a test can then show
            # the connection still works, and count the misbehaviour exactly.
            while True:
                await _user_message(ws)
                await script(ws, f"msg_{next(self._reply_ids)}")  # fresh ids, as the backend
                script = well_behaved

    def __enter__(self) -> HostileServer:
        self._thread.start()
        assert self._ready.wait(10), "hostile server did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


class RawServer:
    """A TCP listener that speaks just enough HTTP to be hostile, as gevent greenlets.

    Modes:
        ``silent``: accept TCP, read the request, never answer.
        ``no_close``: complete the WebSocket handshake, then read and ignore everything,
            the close frame included, and never end TCP.
        ``paused``: complete the handshake, then read nothing until :attr:`reading` is set
            (so the client's sends fill the socket buffers); from then on the client's
            frames are parsed (websockets' Sans-I/O server side) into :attr:`frames`.
    """

    def __init__(self, mode: str) -> None:
        assert mode in ("silent", "no_close", "paused"), mode
        self.mode = mode
        self.reading = gevent.event.Event()
        self.frames: list[Any] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._greenlets: list[gevent.Greenlet] = []
        self._clients: list[socket.socket] = []
        self.requests = 0

    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/consultation?consultation_id=c1"

    def _accept_loop(self) -> None:
        while True:
            client, _ = self._listener.accept()
            self._clients.append(client)
            self._greenlets.append(gevent.spawn(self._serve, client))

    def _serve(self, client: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            data = client.recv(4096)
            if not data:
                return
            request += data
        self.requests += 1
        if self.mode in ("no_close", "paused"):
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            client.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if self.mode == "paused":
            self.reading.wait()
            protocol = ServerProtocol(state=State.OPEN, max_size=None)
            while data := client.recv(65536):
                protocol.receive_data(data)
                self.frames.extend(protocol.events_received())
            return
        while client.recv(4096):  # swallow everything, answer nothing
            pass

    def __enter__(self) -> RawServer:
        self._greenlets.append(gevent.spawn(self._accept_loop))
        return self

    def __exit__(self, *exc_info: object) -> None:
        gevent.killall(self._greenlets)
        for client in self._clients:
            client.close()
        self._listener.close()
