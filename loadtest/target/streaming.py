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

Faults decided for the stream are applied at its middle chunk (``chunks // 2``).
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
from loadtest.target.frames import WORDS

if TYPE_CHECKING:
    from loadtest.target.connection import ConsultationConnection

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
MAX_LAG_S = 0.002  # how far behind its ideal schedule a stream may fall before catching up
_OUTCOME_STAT = {"completed": Stat.streams_completed, "cancelled": Stat.streams_cancelled}


@dataclass(slots=True)
class UserMessage:
    """A ``user_message`` as received: its id (any JSON value the client chose) and when."""

    message_id: object
    received: float


@dataclass(slots=True)
class StreamRecord:
    """Ground truth of one reply (``time.perf_counter()`` seconds; None = never happened).

    ``*_sent`` are stamped just before the frame is written to the socket, so a client on the
    same host always stamps its arrival later.
    """

    conn: str
    client_message_id: object
    received: float
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
                "message_id": self.message_id, "received": self.received, "began": self.began,
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
    record = StreamRecord(conn.conn_id, message.message_id, message.received)
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
    sleep = asyncio.sleep
    send = conn.ws.send_frame
    encoder = ctx.encoder
    plan = ctx.config.profile.plan(ctx.rng)
    begin = loop.time()
    record.began = perf_counter()
    for kind in record.faults:
        ctx.count_fault(kind)

    if faults.terminal == "error":
        delay = begin + plan.start_s - loop.time()
        if delay > 0:
            await sleep(delay)
        await conn.send_error(message.message_id, "injected_error",
                              "AI service error (injected fault)")
        return "error"

    message_id = ctx.next_id("msg_")
    record.message_id = message_id
    id_part = encoder.id_part(message_id)
    if not faults.chunk_before_start:
        delay = begin + plan.start_s - loop.time()
        if delay > 0:
            await sleep(delay)
        record.start_sent = perf_counter()
        await send(encoder.start(id_part), _TEXT)

    offsets = plan.chunk_s
    middle = len(offsets) // 2
    word = ctx.rng.randrange(len(WORDS))
    shift = 0.0  # a stall moves every later due time
    previous_ideal = previous_sent = previous_offset = 0.0
    for index, offset in enumerate(offsets):
        payload: bytes | None = None
        opcode = _TEXT
        if index == middle:
            shift += faults.stall_ms / 1000.0
            if faults.terminal is not None:
                delay = begin + shift + offset - loop.time()
                if delay > 0:
                    await sleep(delay)
                conn.end_stream_with(faults.terminal)
                return faults.terminal
            if faults.oversized_bytes:
                payload = encoder.oversized_chunk(id_part, faults.oversized_bytes)
            elif faults.malformed:
                payload = encoder.malformed_chunk(id_part, word + index)
            if faults.binary:
                opcode = _BINARY
        ideal = begin + shift + offset
        due = ideal
        if index and previous_sent - previous_ideal <= MAX_LAG_S:
            due = max(ideal, previous_sent + offset - previous_offset)
        delay = due - loop.time()
        if delay > 0:
            await sleep(delay)
        previous_ideal, previous_sent, previous_offset = ideal, loop.time(), offset
        if index == 0:
            record.first_chunk_sent = perf_counter()
        await send(payload or encoder.chunk(id_part, word + index), opcode)
        record.chunks += 1
        if index == 0 and faults.chunk_before_start:
            record.start_sent = perf_counter()
            await send(encoder.start(id_part), _TEXT)

    delay = begin + shift + plan.complete_s - loop.time()
    if delay > 0:
        await sleep(delay)
    complete = encoder.complete(id_part)
    record.complete_sent = perf_counter()
    await send(complete, _TEXT)
    if faults.duplicate_complete:
        await send(complete, _TEXT)

    share = ctx.config.template_share
    if share > 0 and (share >= 1 or ctx.rng.random() < share):
        frame = encoder.template_created(ctx.next_id("msg_"), f"tmpl_{secrets.token_hex(6)}",
                                         ctx.rng.randrange(1 << 16))
        await send(frame, _TEXT)
        record.template = True
        ctx.counters[Stat.templates_sent] += 1
    return "completed"
