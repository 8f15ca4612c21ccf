"""Shared helpers for the target's tests: start targets as subprocesses, speak HTTP and WS.

The test process is gevent-patched (tests/conftest.py), so every server runs in a subprocess via
:class:`TargetProcess`; clients here are urllib and ``websockets.sync``, which work patched.

Timing tests check the target's schedule on the wire to a millisecond, but this test process is
busy (gevent, earlier tests' leftovers, a shared 2-core machine): a frame stamped when
``recv()`` returns carries that process's delay, and clean-clone CI runs failed on it (gaps of
1 ms read as 0.1 ms, a 150 ms stall as 149.5 ms). So each frame is stamped when the kernel
received its bytes (``SO_TIMESTAMPNS``, as the load generator does: :mod:`loadtest.receive_stamps`),
falling back to the read's own moment where the kernel gives no stamp; the socket wrapper is
the one the target uses (:class:`loadtest.receive_stamps.StampedSocket`).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import DATA_OPCODES, Frame
from websockets.sync.client import ClientConnection, connect

from loadtest.receive_stamps import StampedSocket, enable
from loadtest.target.process import TargetProcess

SECRET = "test-only-secret-0123456789abcdef"
API_KEY = "test-only-api-key"
ENV = {"LOADTEST_JWT_SECRET": SECRET, "LOADTEST_API_KEY": API_KEY}
RECV_TIMEOUT_S = 10.0


class ArrivalStampedConnection(ClientConnection):
    """``websockets.sync``'s client, keeping when each message's bytes arrived (module doc).

    Attributes:
        last_arrival: when the bytes of the last frame of the message :meth:`recv` returned
            last reached the kernel (``perf_counter``; the read's own moment without a stamp).
    """

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        self._arrivals: deque[float] = deque()  # before the reader starts in __init__
        self.last_arrival: float | None = None
        super().__init__(sock, *args, **kwargs)

    def process_event(self, event: Any) -> None:
        # runs in websockets' reader thread before the frame reaches the message queue, so a
        # message's stamp is always queued before the message; one stamp per message (its
        # final frame), in order
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES and event.fin:
            self._arrivals.append(self.socket.latest_arrival)
        super().process_event(event)

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes:
        message = super().recv(timeout, decode)
        self.last_arrival = self._arrivals.popleft()
        return message


class Client:
    """One target and the client moves the tests need against it."""

    secret = SECRET
    api_key = API_KEY

    def __init__(self, process: TargetProcess) -> None:
        self.process = process
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def stop(self) -> int | None:
        return self.process.stop()

    # -- HTTP --------------------------------------------------------------------------------

    def http(self, method: str, path: str, body: object = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.process.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with self._opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def login(self, email: str = "alice@example.com") -> dict[str, Any]:
        status, body = self.http("POST", "/auth/login", {"email": email, "password": "pw"})
        assert status == 200, body
        return body

    def consultation(self, token: str, api_key: str = API_KEY) -> tuple[int, Any]:
        return self.http("POST", "/consultations",
                         {"user_id": "ignored", "consultation_type": "nutrition",
                          "initial_message": None},
                         {"Authorization": f"Bearer {token}", "X-API-Key": api_key})

    def session(self, email: str = "alice@example.com") -> tuple[str, str]:
        """A fresh access token and a consultation owned by ``email``."""
        token = self.login(email)["access_token"]
        status, body = self.consultation(token)
        assert status == 201, body
        return token, body["id"]

    # -- WebSocket ---------------------------------------------------------------------------

    def connect(self, token: str | None = None, consultation_id: str | None = None,
                api_key: str | None = API_KEY, **kwargs: Any) -> ClientConnection:
        if token is None or consultation_id is None:
            fresh_token, fresh_id = self.session()
            token, consultation_id = token or fresh_token, consultation_id or fresh_id
        query = f"?consultation_id={consultation_id}"
        if token:
            query += f"&token={token}"
        headers = {"X-API-Key": api_key} if api_key is not None else {}
        kwargs.setdefault("open_timeout", 10)
        url = self.process.ws_url + query
        if url.startswith("ws://") and "sock" not in kwargs:
            parts = urlsplit(url)
            raw = socket.create_connection((parts.hostname, parts.port),
                                           timeout=kwargs["open_timeout"])
            enable(raw)
            kwargs["sock"] = StampedSocket(raw)
            kwargs["create_connection"] = ArrivalStampedConnection
        return connect(url, additional_headers=headers, compression=None, proxy=None, **kwargs)

    def handshake_status(self, **kwargs: Any) -> int:
        """The HTTP status a refused handshake gets (fails the test if it is accepted)."""
        try:
            ws = self.connect(**kwargs)
        except InvalidStatus as exc:
            return exc.response.status_code
        ws.close()
        raise AssertionError("handshake was accepted")


    # -- frames (static: no target needed) ---------------------------------------------

    @staticmethod
    def mint(sub: str = "user_test", ttl_s: float = 300, **claims: Any) -> str:
        """A token signed with the test secret, as a client holding the secret would mint it."""
        now = int(time.time())
        return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl_s, **claims}, SECRET, "HS256")

    @staticmethod
    def send_user_message(ws: ClientConnection, message_id: str, key: str = "message_id") -> float:
        """Send a user_message; return ``perf_counter()`` just before the send."""
        frame = json.dumps({"type": "user_message", "content": "I want to lose weight",
                            key: message_id, "timestamp": "2025-01-27T10:00:00Z"})
        sent = time.perf_counter()
        ws.send(frame)
        return sent

    @staticmethod
    def read_until(ws: ClientConnection, stop: Callable[[dict[str, Any]], bool],
                   timeout: float = RECV_TIMEOUT_S) -> list[tuple[float, Any]]:
        """Receive ``(perf_counter, frame)`` pairs until ``stop(frame)`` or the socket closes;
        each frame's moment is its arrival where the connection keeps it (see the module doc).

        Text frames that are not JSON are returned as raw strings, binary frames as bytes.
        """
        frames: list[tuple[float, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            wait = max(0.01, deadline - time.monotonic())
            try:
                raw = ws.recv(timeout=wait)
                now = time.perf_counter()
                if isinstance(ws, ArrivalStampedConnection) and ws.last_arrival is not None:
                    now = ws.last_arrival
            except (ConnectionClosed, TimeoutError):
                return frames
            try:
                frame = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                frame = raw
            frames.append((now, frame))
            if isinstance(frame, dict) and stop(frame):
                return frames

    @staticmethod
    def read_reply(ws: ClientConnection,
                   timeout: float = RECV_TIMEOUT_S) -> list[tuple[float, Any]]:
        """Frames up to and including ``ai_message_complete`` or ``error`` (or the close)."""
        return Client.read_until(
            ws, lambda f: f.get("type") in ("ai_message_complete", "error"), timeout)

    @staticmethod
    def types_of(frames: Sequence[tuple[float, Any]]) -> list[str]:
        return [f["type"] if isinstance(f, dict) else type(f).__name__ for _, f in frames]


@pytest.fixture(scope="module")
def start_target() -> Iterator[Callable[..., Client]]:
    """Factory: ``start_target(["--profile", "fixed"])`` → a running :class:`Client`;
    every target it started stops when the test module ends."""
    started: list[Client] = []

    def start(args: Sequence[str] = (), env: dict[str, str] | None = None) -> Client:
        client = Client(TargetProcess(args, env={**ENV, **(env or {})}).start())
        started.append(client)
        return client

    yield start
    for client in started:
        client.stop()
