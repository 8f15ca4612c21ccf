"""One reply: ``ai_message_start`` → chunks → ``ai_message_complete`` (→ ``template_created``).

Scheduling. Each frame's ideal time is ``begin + offset`` from the profile's plan, computed from
the stream's begin, never by chaining sleeps. asyncio wakes up to ~1 ms late (epoll waits whole
milliseconds), at random; sending every chunk at its ideal time would make the gaps a client
measures scatter symmetrically around the nominal gap, half of them short. So a chunk also waits
until one nominal gap after the previous chunk *actually* left — unless the stream is already more
than :data:`MAX_LAG_S` behind its ideal schedule, in which case it goes at its ideal time and
catches up. Gaps are then never shorter than nominal except on a catch-up, and the lag stays
bounded (about ``MAX_LAG_S`` + one wake-up), so the stream does not drift. The first chunk always
goes at its ideal time: TTFC carries one wake-up's lateness only.

The start frame and the reply's bookkeeping run in a coroutine; the timed part (chunks and
complete) runs as callbacks of the process's :class:`~loadtest.target.scheduler.Scheduler`,
writing pre-built frames straight to the transport. Faults decided for the stream are applied at
its middle chunk (``chunks // 2``).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from aiohttp import WSMsgType

from loadtest.target.control import Stat
from loadtest.target.faults import StreamFaults, roll_stream_faults
from loadtest.target.frames import OP_BINARY, OP_TEXT, WORDS, ws_frame
from loadtest.target.profiles import StreamPlan

if TYPE_CHECKING:
    from loadtest.target.connection import ConsultationConnection

MAX_LAG_S = 0.002  # how far behind its ideal schedule a stream may fall before catching up
HIGH_WATER_BYTES = 256 * 1024  # a client this far behind in reading pauses its stream
BACKPRESSURE_POLL_S = 0.01
_OUTCOME_STAT = {"completed": Stat.streams_completed, "cancelled": Stat.streams_cancelled}


@dataclass(slots=True)
class UserMessage:
    """A ``user_message`` as received: its id (any JSON value the client chose) and when."""

    message_id: object
    received: float
    #: When its bytes reached the socket (``--ground-truth`` on Linux), else None.
    arrived: float | None = None


@dataclass(slots=True)
class StreamRecord:
    """Ground truth of one reply (``time.perf_counter()`` seconds; None = never happened).

    ``*_sent`` are stamped just before the frame is written to the socket, so a client on the
    same host always stamps its arrival later. ``received`` is when the handler took the user
    message, ``arrived`` when its bytes reached the socket (:mod:`loadtest.target.arrival_socket`;
    None where the kernel gives no stamp): the server's latency as a client sees it starts there.
    """

    conn: str
    client_message_id: object
    received: float
    arrived: float | None = None
    message_id: str | None = None
    began: float | None = None
    start_sent: float | None = None
    first_chunk_sent: float | None = None
    complete_sent: float | None = None
    ended: float | None = None
    chunks: int = 0
    outcome: str = "cancelled"
    faults: tuple[str, ...] = ()
    template: bool = False

    def as_json(self) -> dict[str, object]:
        return {"event": "stream", "conn": self.conn, "client_message_id": self.client_message_id,
                "message_id": self.message_id, "received": self.received,
                "arrived": self.arrived, "began": self.began,
                "start_sent": self.start_sent, "first_chunk_sent": self.first_chunk_sent,
                "complete_sent": self.complete_sent, "ended": self.ended,
                "chunks": self.chunks, "outcome": self.outcome, "faults": list(self.faults),
                "template": self.template}


async def send_reply(conn: ConsultationConnection, message: UserMessage) -> None:
    """Answer one user message on ``conn``, honouring slots, faults and the profile.

    Never raises for a connection that went away (the outcome says ``closed``); re-raises
    cancellation after recording it.
    """
    ctx = conn.ctx
    ctx.settings.refresh()
    record = StreamRecord(conn.conn_id, message.message_id, message.received, message.arrived)
    counters = ctx.counters
    counters[Stat.streams_started] += 1
    faults = roll_stream_faults(ctx.settings.faults, ctx.rng)
    record.faults = tuple(faults.kinds)
    try:
        if ctx.slots is None:
            record.outcome = await _generate(conn, message, faults, record)
        else:
            record.outcome = await _generate_in_slot(conn, message, faults, record)
    except ConnectionError:
        record.outcome = "closed"
    finally:
        record.ended = perf_counter()
        counters[_OUTCOME_STAT.get(record.outcome, Stat.streams_failed)] += 1
        counters[Stat.chunks_sent] += record.chunks
        if ctx.ground_truth is not None:
            ctx.ground_truth.write(record.as_json())


async def _generate_in_slot(conn: ConsultationConnection, message: UserMessage,
                            faults: StreamFaults, record: StreamRecord) -> str:
    """Capacity model: queue for one of the profile's generation slots, hold it to the end."""
    ctx = conn.ctx
    assert ctx.slots is not None
    max_queue = getattr(ctx.config.profile, "max_queue", 0)
    if max_queue and ctx.slots.locked() and ctx.waiting_for_slot >= max_queue:
        await conn.send_error(message.message_id, "overloaded", "server overloaded, try later")
        return "overloaded"
    ctx.waiting_for_slot += 1
    try:
        await ctx.slots.acquire()
    finally:
        ctx.waiting_for_slot -= 1
    try:
        return await _generate(conn, message, faults, record)
    finally:
        ctx.slots.release()


async def _generate(conn: ConsultationConnection, message: UserMessage, faults: StreamFaults,
                    record: StreamRecord) -> str:
    ctx = conn.ctx
    loop = asyncio.get_running_loop()
    encoder = ctx.encoder
    plan = ctx.config.profile.plan(ctx.rng)
    begin = loop.time()
    record.began = perf_counter()
    for kind in record.faults:
        ctx.count_fault(kind)

    if faults.terminal == "lose":
        # As if the message never reached the model: nothing at all is sent for it, and the
        # next message is served as usual (one reply at a time).
        return "lost"

    frozen_s = ctx.settings.frozen_until - loop.time()
    delay = max(begin + plan.start_s - loop.time(), frozen_s)
    if faults.terminal == "error":
        if delay > 0:
            await asyncio.sleep(delay)
        await conn.send_error(message.message_id, "injected_error",
                              "AI service error (injected fault)")
        return "error"

    message_id = ctx.next_id("msg_")
    record.message_id = message_id
    id_part = encoder.id_part(message_id)
    if not faults.chunk_before_start:
        if delay > 0:
            await asyncio.sleep(delay)
        record.start_sent = perf_counter()
        await conn.ws.send_frame(encoder.start(id_part), WSMsgType.TEXT)

    done: asyncio.Future[str] = loop.create_future()
    _ChunkRun(conn, plan, faults, record, id_part, begin, done).step()
    outcome = await done
    if outcome != "completed":
        return outcome

    share = ctx.config.template_share
    if share > 0 and (share >= 1 or ctx.rng.random() < share):
        frame = encoder.template_created(ctx.next_id("msg_"), f"tmpl_{secrets.token_hex(6)}",
                                         ctx.rng.randrange(1 << 16))
        await conn.ws.send_frame(frame, WSMsgType.TEXT)
        record.template = True
        ctx.counters[Stat.templates_sent] += 1
    return "completed"


class _ChunkRun:
    """The timed part of one reply — its chunks and complete — as scheduler callbacks.

    Writes go straight to the transport as whole pre-built frames (one ``write`` each, so they
    never interleave with aiohttp's own frames), after checking the socket is not closing. A
    client that stops reading does not grow the buffer without bound: above
    :data:`HIGH_WATER_BYTES` the run waits, polling every :data:`BACKPRESSURE_POLL_S`.
    Resolves ``done`` with the outcome, or with ``ConnectionResetError`` if the socket closed.
    """

    __slots__ = ("_begin", "_conn", "_done", "_encoder", "_faults", "_id_part", "_index",
                 "_loop", "_middle", "_offsets", "_plan", "_previous", "_record", "_scheduler",
                 "_shift", "_stalled", "_transport", "_word")

    def __init__(self, conn: ConsultationConnection, plan: StreamPlan, faults: StreamFaults,
                 record: StreamRecord, id_part: bytes, begin: float,
                 done: asyncio.Future[str]) -> None:
        ctx = conn.ctx
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._scheduler = ctx.scheduler
        self._encoder = ctx.encoder
        self._transport = conn.request.transport
        self._plan = plan
        self._offsets = plan.chunk_s
        self._middle = len(plan.chunk_s) // 2
        self._faults = faults
        self._record = record
        self._id_part = id_part
        self._begin = begin
        self._done = done
        self._word = ctx.rng.randrange(len(WORDS))
        self._index = 0
        self._shift = 0.0  # a stall moves every later due time
        self._stalled = False
        self._previous = (0.0, 0.0, 0.0)  # ideal time, actual send time, plan offset

    def step(self) -> None:
        """Send whatever is due now; schedule the rest. Safe to call after the end."""
        if self._done.done():  # cancelled with its connection, or already finished
            return
        try:
            self._advance()
        except ConnectionError as exc:
            if not self._done.done():
                self._done.set_exception(exc)

    def _write(self, frame: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or self._conn.ws.closed:
            raise ConnectionResetError("socket closed")
        transport.write(frame)

    def _advance(self) -> None:
        offsets, record, encoder, faults = self._offsets, self._record, self._encoder, self._faults
        now = self._loop.time()
        settings = self._conn.ctx.settings
        settings.refresh()
        if settings.frozen_until > now:  # the whole server is frozen: nothing leaves
            self._scheduler.at(settings.frozen_until, self.step)
            return
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size() > HIGH_WATER_BYTES:
            self._scheduler.at(now + BACKPRESSURE_POLL_S, self.step)
            return
        while self._index < len(offsets):
            index = self._index
            offset = offsets[index]
            previous_ideal, previous_sent, previous_offset = self._previous
            if index == self._middle and not self._stalled:
                self._stalled = True
                # the pause counts from the chunk before as it left, however late: a stall of
                # MS is at least MS (+ the gap) on the wire, not MS less that chunk's lateness
                late = max(0.0, previous_sent - previous_ideal) if index else 0.0
                self._shift += faults.stall_ms / 1000.0 + late
            ideal = self._begin + self._shift + offset
            due = ideal
            if index and previous_sent - previous_ideal <= MAX_LAG_S:
                due = max(ideal, previous_sent + offset - previous_offset)
            if due > now:
                self._scheduler.at(due, self.step)
                return
            if index == self._middle and faults.terminal is not None:
                self._conn.end_stream_with(faults.terminal)
                self._done.set_result(faults.terminal)
                return
            opcode = OP_TEXT
            word = self._word + index
            if index == self._middle and (faults.oversized_bytes or faults.malformed
                                          or faults.binary):
                if faults.oversized_bytes:
                    payload = encoder.oversized_chunk(self._id_part, faults.oversized_bytes)
                elif faults.malformed:
                    payload = encoder.malformed_chunk(self._id_part, word)
                else:
                    payload = encoder.chunk(self._id_part, word)
                if faults.binary:
                    opcode = OP_BINARY
            else:
                payload = encoder.chunk(self._id_part, word)
            if index == 0:
                record.first_chunk_sent = perf_counter()
            self._write(ws_frame(payload, opcode))
            record.chunks += 1
            if index == 0 and faults.chunk_before_start:
                record.start_sent = perf_counter()
                self._write(ws_frame(encoder.start(self._id_part)))
            self._previous = (ideal, now, offset)
            self._index += 1
            now = self._loop.time()

        due = max(self._begin + self._shift + self._plan.complete_s, self._previous[1])
        if due > now:
            self._scheduler.at(due, self.step)
            return
        complete = ws_frame(encoder.complete(self._id_part))
        record.complete_sent = perf_counter()
        self._write(complete)
        if faults.duplicate_complete:
            self._write(complete)
        self._done.set_result("completed")
