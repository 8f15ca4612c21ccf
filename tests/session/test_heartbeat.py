"""The heartbeat as a timer in the hub: same promises as a greenlet per connection, no greenlet.

A fake connection and a fake send stand in for the socket: what is specified here is timing
and counting (one ping outstanding, timeouts, misses in a row, on_dead once), not bytes.
"""

from __future__ import annotations

import gc
import time

import gevent
import greenlet

from loadtest.protocol import MessageType
from loadtest.session.heartbeat import Heartbeat


class FakeConnection:
    is_open = True


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []
        self.rtts: list[float] = []
        self.pings = 0
        self.missed = 0
        self.dead = 0

    def ping_sent(self) -> None:
        self.pings += 1

    def pong_received(self, rtt_ms: float) -> None:
        self.rtts.append(rtt_ms)

    def pong_missed(self) -> None:
        self.missed += 1


def heartbeat(recorder: Recorder, connection: FakeConnection | None = None, *, answer: bool,
              interval_s: float = 0.05, timeout_s: float = 0.03, max_missed: int = 2,
              send_ok: bool = True) -> Heartbeat:  # fmt: skip
    holder: list[Heartbeat] = []

    def send(kind: MessageType, message_id: str) -> bool:
        assert kind is MessageType.PING
        recorder.sent.append((time.perf_counter(), message_id))
        if answer:  # the pong comes back 5 ms later, read by "the reader greenlet"
            gevent.spawn_later(0.005, lambda: holder[0].pong(message_id, time.perf_counter()))
        return send_ok

    def on_dead() -> None:
        recorder.dead += 1

    beat = Heartbeat(
        connection or FakeConnection(),  # type: ignore[arg-type]
        interval_s=interval_s, timeout_s=timeout_s, max_missed=max_missed,
        observer=recorder, send=send, on_dead=on_dead,  # type: ignore[arg-type]
    )  # fmt: skip
    holder.append(beat)
    return beat


def test_pings_every_interval_and_records_each_round_trip() -> None:
    recorder = Recorder()
    beat = heartbeat(recorder, answer=True)
    beat.start()
    gevent.sleep(0.28)
    beat.stop()
    assert 4 <= recorder.pings <= 6
    assert len(recorder.rtts) == recorder.pings and all(4 <= rtt < 40 for rtt in recorder.rtts)
    gaps = [b[0] - a[0] for a, b in zip(recorder.sent, recorder.sent[1:], strict=False)]
    assert all(0.045 <= gap < 0.12 for gap in gaps), gaps
    assert recorder.missed == 0 and recorder.dead == 0


def test_missed_pongs_in_a_row_call_on_dead_once_and_stop() -> None:
    recorder = Recorder()
    beat = heartbeat(recorder, answer=False)
    started = time.perf_counter()
    beat.start()
    gevent.sleep(0.3)
    assert recorder.missed == 2 and recorder.dead == 1
    assert recorder.pings == 2, "no ping after the link was declared dead"
    # first ping after one interval, the second when due (timeout < interval), then its timeout
    first, second = (at - started for at, _ in recorder.sent)
    assert 0.045 <= first < 0.1 and 0.045 <= second - first < 0.12


def test_one_ping_outstanding_a_timeout_longer_than_the_interval_delays_the_next() -> None:
    recorder = Recorder()
    beat = heartbeat(recorder, answer=False, interval_s=0.02, timeout_s=0.06, max_missed=3)
    beat.start()
    gevent.sleep(0.2)
    beat.stop()
    gaps = [b[0] - a[0] for a, b in zip(recorder.sent, recorder.sent[1:], strict=False)]
    assert gaps and all(gap >= 0.055 for gap in gaps), gaps


def test_unknown_and_late_pongs_are_ignored() -> None:
    recorder = Recorder()
    beat = heartbeat(recorder, answer=False, max_missed=5)
    beat.start()
    gevent.sleep(0.06)
    beat.pong("never-sent", time.perf_counter())
    gevent.sleep(0.04)  # the first ping timed out
    late = recorder.sent[0][1]
    beat.pong(late, time.perf_counter())
    beat.stop()
    assert recorder.rtts == [] and recorder.missed == 1


def test_a_pong_resets_the_count_of_misses() -> None:
    recorder = Recorder()
    beat = heartbeat(recorder, answer=False, max_missed=2)
    beat.start()
    gevent.sleep(0.11)  # the first ping missed (at 0.08 s), the second (0.10 s) outstanding
    assert recorder.missed == 1 and len(recorder.sent) == 2
    beat.pong(recorder.sent[-1][1], time.perf_counter())
    gevent.sleep(0.08)  # the third (0.15 s) is missed: one in a row, not two
    beat.stop()
    assert recorder.missed == 2 and recorder.dead == 0


def test_a_failed_send_or_closed_connection_stops_the_heartbeat() -> None:
    recorder = Recorder()
    heartbeat(recorder, answer=True, send_ok=False).start()
    gevent.sleep(0.15)
    assert recorder.pings == 0 and len(recorder.sent) == 1

    closed = Recorder()
    connection = FakeConnection()
    connection.is_open = False
    heartbeat(closed, connection, answer=True).start()
    gevent.sleep(0.1)
    assert closed.sent == []


def test_an_idle_heartbeat_holds_no_greenlet() -> None:
    def live() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and o)

    before = live()
    recorder = Recorder()
    beats = [heartbeat(recorder, answer=True, interval_s=0.05) for _ in range(200)]
    for beat in beats:
        beat.start()
    gevent.sleep(0.08)  # every one has pinged and had its pong
    assert live() <= before
    for beat in beats:
        beat.stop()
    assert recorder.pings >= 200 and len(recorder.rtts) >= 200
