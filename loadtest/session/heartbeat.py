"""The app-level heartbeat of one connection: ``ping`` every interval, count missed pongs.

No greenlet per connection: an idle connection's heartbeat is one timer in the gevent hub's
loop (libev keeps every timer of the process in one heap, so the hub *is* the process's
heartbeat scheduler). A parked greenlet costs ~8 KiB of RSS (its saved C stack and its own
Python data stack page); a timer ~0.3 KiB. The timer's callback runs in the hub and only does
bookkeeping; the work that may block (sending the ping, resetting a dead link) runs in a
short-lived greenlet of its own, so one connection stuck in ``sendall`` delays no other
connection's heartbeat. ``bench/idle_capacity.py`` measures the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

import gevent

from loadtest.entropy import random_id
from loadtest.protocol import MessageType
from loadtest.session.observer import SessionObserver
from loadtest.transport import WebSocketConnection


class Heartbeat:
    """Pings one connection until it closes; ``max_missed`` misses in a row and it is dead.

    At most one ping is outstanding: each waits for its pong up to ``timeout_s``, so a miss is
    unambiguous, and the next is due ``interval_s`` after the previous was sent (at once, if
    that time has passed while waiting). A pong for any other id (late, or never sent) is
    ignored, not counted.

    Args:
        connection: the connection to keep alive.
        send: sends one client message (type, id); ``False`` if it could not.
        on_dead: called once when too many pongs were missed (the caller resets the link);
            in a greenlet of its own, so it may block.
    """

    __slots__ = (
        "_connection", "_due_at", "_interval_s", "_max_missed", "_missed", "_observer",
        "_on_dead", "_ping_id", "_send", "_sent_at", "_stopped", "_timeout_s", "_timer",
    )  # fmt: skip

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
    ) -> None:
        self._connection = connection
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._max_missed = max_missed
        self._observer = observer
        self._send = send
        self._on_dead = on_dead
        #: The outstanding ping (at most one) and when it was sent.
        self._ping_id: str | None = None
        self._sent_at = 0.0
        #: When the next ping is due.
        self._due_at = 0.0
        self._missed = 0
        self._timer: object | None = None
        self._stopped = False

    def start(self) -> None:
        self._due_at = perf_counter() + self._interval_s
        self._arm(self._interval_s, self._ping_due)

    def stop(self) -> None:
        """No more pings; safe from any greenlet (the hub's included), any number of times."""
        self._stopped = True
        self._disarm()

    def pong(self, message_id: str, at: float) -> None:
        """A ``pong`` arrived (from the connection's reader); unknown ids are ignored."""
        if message_id != self._ping_id or self._ping_id is None:
            return
        self._ping_id = None
        self._missed = 0
        self._observer.pong_received((at - self._sent_at) * 1000.0)
        if not self._stopped:
            self._arm(max(0.0, self._due_at - perf_counter()), self._ping_due)

    # ------------------------------------------------------------------ timers (in the hub)

    def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._disarm()
        # ref=False: a heartbeat never keeps the loop alive by itself. update=True: measured
        # from now, not from the loop's cached time (as gevent.sleep does).
        timer = gevent.get_hub().loop.timer(delay_s, ref=False)
        self._timer = timer
        timer.start(callback, update=True)

    def _disarm(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.close()

    def _ping_due(self) -> None:
        self._timer = None
        if self._stopped or not self._connection.is_open:
            return
        gevent.spawn_raw(self._ping)

    def _pong_overdue(self) -> None:
        self._timer = None
        if self._stopped or not self._connection.is_open or self._ping_id is None:
            return
        self._ping_id = None
        self._missed += 1
        self._observer.pong_missed()
        if self._missed >= self._max_missed:
            self.stop()
            gevent.spawn_raw(self._on_dead)
            return
        self._arm(max(0.0, self._due_at - perf_counter()), self._ping_due)

    # ------------------------------------------------------------------ sending (own greenlet)

    def _ping(self) -> None:
        if self._stopped or not self._connection.is_open:
            return
        ping_id = random_id()
        # Outstanding before it is written: its pong may be read before send returns.
        self._ping_id = ping_id
        self._sent_at = sent = perf_counter()
        self._due_at = sent + self._interval_s
        if not self._send(MessageType.PING, ping_id):
            self._ping_id = None
            self.stop()
            return
        self._observer.ping_sent()
        if not self._stopped and self._ping_id == ping_id:  # no pong yet: time it out
            self._arm(self._timeout_s, self._pong_overdue)
