"""One accepted consultation WebSocket: read frames, answer pings, run replies one at a time.

The read loop never waits for a reply to finish, so app-level pings, WebSocket pings and the
client's close are answered while a reply streams. Replies run in one task per connection at a
time; a ``user_message`` arriving meanwhile is queued (``--busy queue``) or answered with an
``error`` frame (``--busy reject``). With the ``rate_limit`` fault, a ``user_message`` beyond the
limit is answered with an ``error`` frame (code ``rate_limited``) before either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections import deque
from time import perf_counter

from aiohttp import WSMsgType, web

from loadtest.receive_stamps import StampedSocket
from loadtest.target.context import TargetContext
from loadtest.target.control import Stat
from loadtest.target.faults import RATE_LIMITED, admit_message
from loadtest.target.streaming import UserMessage, send_reply

CLOSE_TOKEN_EXPIRED = 4001  # private-use close code (RFC 6455 §7.4.2): the session's JWT expired
CLOSE_SERVICE_RESTART = 1012
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011
_TERMINAL_CLOSES = {
    "drop": (CLOSE_INTERNAL_ERROR, "internal error (injected drop)"),
    "expire_token": (CLOSE_TOKEN_EXPIRED, "token expired"),
}


class ConsultationConnection:
    """The server side of one consultation socket.

    Args:
        ctx: the process's shared state.
        ws: the prepared WebSocket response.
        request: the upgrade request (its transport is needed for the TCP-reset fault).
        conn_id: this connection's id, also sent to the client as ``X-Connection-Id``.
        token_exp: the access token's ``exp`` (Unix time), if it has one.
        arrivals: the socket that keeps when the latest bytes arrived (``--ground-truth``).
    """

    def __init__(self, ctx: TargetContext, ws: web.WebSocketResponse, request: web.Request,
                 conn_id: str, token_exp: float | None,
                 arrivals: StampedSocket | None = None) -> None:
        self.ctx = ctx
        self.arrivals = arrivals
        self.ws = ws
        self.request = request
        self.conn_id = conn_id
        self.token_exp = token_exp
        self.server_close: tuple[int, str] | None = None
        self._pending: deque[UserMessage] = deque()
        #: When the user messages the rate limit let through arrived (the last window's).
        self._admitted: deque[float] = deque()
        self._reply_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._pong = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it."""
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        ctx.connections.add(self)
        ctx.counters[Stat.connections_opened] += 1
        tasks: list[asyncio.Task[None]] = []
        expiry: asyncio.TimerHandle | None = None
        config = ctx.config
        if config.ws_ping_interval > 0:
            tasks.append(asyncio.create_task(
                self._keepalive(config.ws_ping_interval, config.ws_ping_timeout)))
        if config.enforce_token_expiry and self.token_exp is not None:
            expiry = loop.call_later(max(0.0, self.token_exp - time.time()), self.close_soon,
                                     CLOSE_TOKEN_EXPIRED, "token expired")
        try:
            await self._read_loop()
        finally:
            if expiry is not None:
                expiry.cancel()
            for task in (*tasks, self._reply_task):
                if task is not None:
                    task.cancel()
            if self._close_task is not None:
                await asyncio.wait([self._close_task], timeout=2.0)
            ctx.connections.discard(self)
            ctx.counters[Stat.connections_closed] += 1
            if ctx.ground_truth is not None:
                code, by = ((self.server_close[0], "server") if self.server_close
                            else (self.ws.close_code, "client"))
                ctx.ground_truth.write({"event": "close", "conn": self.conn_id,
                                        "t": perf_counter(), "code": code, "by": by})

    async def _read_loop(self) -> None:
        ws = self.ws
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                arrivals = self.arrivals
                await self._on_text(msg.data, perf_counter(),
                                    arrivals.latest_arrival if arrivals is not None else None)
            elif kind is WSMsgType.PING:
                await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                self._pong.set()
            elif kind is WSMsgType.BINARY:
                self.ctx.counters[Stat.invalid_frames_received] += 1
                await self.send_error(None, "unsupported_frame", "binary frames are not supported")
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return

    async def _keepalive(self, interval: float, timeout: float) -> None:
        """WebSocket-level ping every ``interval`` s; close 1011 if no pong within ``timeout``."""
        try:
            while True:
                await asyncio.sleep(interval)
                self._pong.clear()
                await self.ws.ping()
                try:
                    await asyncio.wait_for(self._pong.wait(), timeout)
                except TimeoutError:
                    self.ctx.counters[Stat.keepalive_timeouts] += 1
                    self.close_soon(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
                    return
        except ConnectionError:
            return

    # -- incoming frames ---------------------------------------------------------------------

    async def _on_text(self, data: str, received: float, arrived: float | None) -> None:
        ctx = self.ctx
        try:
            frame = json.loads(data)
        except ValueError:
            ctx.counters[Stat.invalid_frames_received] += 1
            await self.send_error(None, "invalid_json", "message is not valid JSON")
            return
        if not isinstance(frame, dict):
            ctx.counters[Stat.invalid_frames_received] += 1
            await self.send_error(None, "invalid_message", "message must be a JSON object")
            return
        kind = frame.get("type")
        message_id = frame.get("message_id", frame.get("messageId"))
        if kind == "user_message":
            if not isinstance(frame.get("content"), str):
                ctx.counters[Stat.invalid_frames_received] += 1
                await self.send_error(message_id, "invalid_message", "content must be a string")
                return
            ctx.counters[Stat.user_messages_received] += 1
            if await self._refused_by_rate_limit(message_id, received):
                return
            if self._reply_task is not None and ctx.config.busy == "reject":
                ctx.counters[Stat.busy_rejections] += 1
                await self.send_error(message_id, "busy", "a reply is already in progress")
                return
            self._enqueue(UserMessage(message_id, received, arrived))
        elif kind == "ping":
            ctx.counters[Stat.pings_received] += 1
            ctx.settings.refresh()
            swallow = ctx.settings.faults.get("swallow_pong")
            if swallow is not None and swallow.hits(ctx.rng):
                ctx.count_fault("swallow_pong")
                return
            await self.ws.send_frame(ctx.encoder.pong(message_id), WSMsgType.TEXT)
            ctx.counters[Stat.pongs_sent] += 1
        else:
            ctx.counters[Stat.invalid_frames_received] += 1
            await self.send_error(message_id, "unknown_type", f"unknown message type {kind!r}")

    async def _refused_by_rate_limit(self, message_id: object, received: float) -> bool:
        """Apply the ``rate_limit`` fault: an ``error`` frame (then a close, if configured)
        for a message over the limit. Returns whether the message was refused."""
        ctx = self.ctx
        ctx.settings.refresh()
        fault = ctx.settings.faults.get("rate_limit")
        if fault is None or admit_message(self._admitted, received, fault.limit, fault.window_s):
            return False
        ctx.count_fault("rate_limit")
        await self.send_error(message_id, RATE_LIMITED, f"rate limit exceeded: more than "
                              f"{fault.limit} messages in {fault.window_s:g} s")
        if ctx.ground_truth is not None:
            ctx.ground_truth.write({"event": "rate_limited", "conn": self.conn_id,
                                    "client_message_id": message_id, "received": received,
                                    "limit": fault.text, "close_code": fault.close_code or None})
        if fault.close_code:
            self.close_soon(fault.close_code, "rate limit exceeded")
        return True

    def _enqueue(self, message: UserMessage) -> None:
        self._pending.append(message)
        if self._reply_task is None:  # None exactly while no reply is running or about to
            self._reply_task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        """Answer queued messages in arrival order, one at a time."""
        try:
            while self._pending:
                await send_reply(self, self._pending.popleft())
        finally:
            self._reply_task = None

    # -- outgoing ----------------------------------------------------------------------------

    async def send_error(self, message_id: object, code: str, content: str) -> None:
        await self.ws.send_frame(self.ctx.encoder.error(message_id, code, content),
                                 WSMsgType.TEXT)
        self.ctx.counters[Stat.error_frames_sent] += 1

    def end_stream_with(self, fault: str) -> None:
        """Apply a terminal fault mid-stream: drop (1011), expire_token (4001) or reset."""
        if fault == "reset":
            self.reset()
        else:
            self.close_soon(*_TERMINAL_CLOSES[fault])

    def close_soon(self, code: int, reason: str) -> None:
        """Close from the server side, in a task of its own (callable from any task)."""
        if self.server_close is not None or self.ws.closed:
            return
        self.server_close = (code, reason)
        self._close_task = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=code, message=reason.encode())

    def reset(self) -> None:
        """Abort the TCP connection with an RST: no close frame, no FIN."""
        self.server_close = (1006, "tcp reset")
        transport = self.request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
