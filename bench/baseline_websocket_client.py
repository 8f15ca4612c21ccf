"""The baseline: a hand-written Locust user on ``websocket-client``, as people write one.

Locust has no plain-WebSocket user, so teams write this: connect with ``websocket-client`` at
its fastest setting (``skip_utf8_validation=True``; its default pure-Python UTF-8 check halves
throughput), send a ``user_message``, ``json.loads`` every frame until ``ai_message_complete``,
and fire two pseudo-requests per reply (time to first chunk, whole stream) into Locust's stats.
No heartbeat, no reconnect policy, no per-chunk metrics: it is the floor our tool must beat in
chunk messages per client CPU-second (issue 12), not a measurement instrument.

    locust -f bench/baseline_websocket_client.py --headless -u 50 -r 50 -t 30s \
        --host ws://127.0.0.1:PORT/ws/consultation

The token is minted from ``LOADTEST_JWT_SECRET`` (the reference target's secret); an
``X-API-Key`` is sent when ``LOADTEST_API_KEY`` is set. Run by ``bench/compare_baseline.py``.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import jwt
import websocket
from locust import User, task


class WebSocketClientChatUser(User):
    """One consultation per user; send, read the whole reply, repeat at once (no think time)."""

    def on_start(self) -> None:
        secret = os.environ["LOADTEST_JWT_SECRET"]
        token = jwt.encode(
            {"sub": f"baseline-{uuid.uuid4().hex[:8]}", "exp": int(time.time()) + 3600},
            secret,
            "HS256",
        )
        headers = []
        if os.environ.get("LOADTEST_API_KEY"):
            headers.append(f"X-API-Key: {os.environ['LOADTEST_API_KEY']}")
        url = f"{self.host}?consultation_id=baseline-{uuid.uuid4().hex[:8]}&token={token}"
        self.ws = websocket.create_connection(
            url, header=headers, skip_utf8_validation=True, enable_multithread=False
        )

    def on_stop(self) -> None:
        self.ws.close()

    @task
    def chat(self) -> None:
        fire = self.environment.events.request.fire
        message_id = uuid.uuid4().hex
        body = {
            "type": "user_message",
            "content": "What should I eat before a morning run?",
            "message_id": message_id,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        sent = time.perf_counter()
        self.ws.send(json.dumps(body))
        first_chunk_at = None
        chunks = 0
        while True:
            message = json.loads(self.ws.recv())
            kind = message.get("type")
            if kind == "ai_message_chunk":
                chunks += 1
                if first_chunk_at is None:
                    first_chunk_at = time.perf_counter()
            elif kind == "ai_message_complete":
                break
            elif kind == "error":
                fire(
                    request_type="WS",
                    name="stream",
                    response_time=0,
                    response_length=0,
                    exception=RuntimeError(message.get("content")),
                    context={},
                )
                return
        done = time.perf_counter()
        if first_chunk_at is not None:
            fire(
                request_type="WS",
                name="ttfc",
                response_time=(first_chunk_at - sent) * 1000,
                response_length=0,
                exception=None,
                context={},
            )
        fire(
            request_type="WS",
            name="stream",
            response_time=(done - sent) * 1000,
            response_length=chunks,
            exception=None,
            context={},
        )
