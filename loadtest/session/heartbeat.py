"""The app-level heartbeat of one connection: ``ping`` every interval, count missed pongs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from time import perf_counter

import gevent
import gevent.event

from loadtest.protocol import MessageType
from loadtest.session.observer import SessionObserver
from loadtest.transport import WebSocketConnection


class Heartbeat:
    """Pings one connection until it closes; ``max_missed`` misses in a row and it is dead.

    At most one ping is outstanding: each waits for its pong up to ``timeout_s``, so a miss is
    unambiguous, and the next is due ``interval_s`` after the previous was sent.

    Args:
        connection: the connection to keep alive.
        send: sends one client message (type, id); ``False`` if it could not.
        on_dead: called once when too many pongs were missed (the caller resets the link).
        sleep: injectable for tests.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        *,
        interval_s: float,
        timeout_s: float,
        max_missed: int,
        observer: SessionObserver,
        send: Callable[[MessageType, str], bool],
        on_dead: Callable[[], None],
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self._connection = connection
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._max_missed = max_missed
        self._observer = observer
        self._send = send
        self._on_dead = on_dead
        self._sleep = sleep
        self._pending: dict[str, float] = {}
        self._pong_arrived = gevent.event.Event()
        self._missed = 0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        greenlet = self._greenlet
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.kill(block=False)

    def pong(self, message_id: str, at: float) -> None:
        """A ``pong`` arrived (reader greenlet); unknown ids are ignored, not counted."""
        sent = self._pending.pop(message_id, None)
        if sent is None:
            return
        self._missed = 0
        self._pong_arrived.set()
        self._observer.pong_received((at - sent) * 1000.0)

    def _loop(self) -> None:
        connection = self._connection
        due = perf_counter() + self._interval_s
        while connection.is_open:
            self._sleep(max(0.0, due - perf_counter()))
            if not connection.is_open:
                return
            ping_id = uuid.uuid4().hex
            self._pong_arrived.clear()
            self._pending[ping_id] = sent = perf_counter()
            if not self._send(MessageType.PING, ping_id):
                return
            self._observer.ping_sent()
            due = sent + self._interval_s
            self._pong_arrived.wait(self._timeout_s)
            if not connection.is_open:
                return
            if self._pending.pop(ping_id, None) is not None:
                self._missed += 1
                self._observer.pong_missed()
                if self._missed >= self._max_missed:
                    self._on_dead()
                    return
