"""Process-wide events: following the control plane, restarts, scheduled restarts, shutdown."""

from __future__ import annotations

import asyncio
import time

from loadtest.target.connection import CLOSE_SERVICE_RESTART
from loadtest.target.context import TargetContext
from loadtest.target.control import Stat

CONTROL_POLL_S = 0.05
SCHEDULE_POLL_S = 0.1


def close_all(ctx: TargetContext, code: int, reason: str, share: float = 1.0) -> None:
    """Start closing every open connection of this process (or a random ``share``)."""
    for conn in list(ctx.connections):
        if share >= 1.0 or ctx.rng.random() < share:
            conn.close_soon(code, reason)


def sync_control(ctx: TargetContext) -> None:
    """Pick up control-plane changes now; drop every connection if a restart was ordered.

    Compares with the epoch this process last *handled*, not the one it last read: other paths
    refresh the settings too (handshakes, streams, the restart schedule).
    """
    ctx.settings.refresh()
    if ctx.settings.restart_epoch != ctx.restart_epoch_handled:
        ctx.restart_epoch_handled = ctx.settings.restart_epoch
        close_all(ctx, CLOSE_SERVICE_RESTART, "service restart", ctx.settings.restart_share)


async def watch_control(ctx: TargetContext) -> None:
    """Follow the control plane (changes made through another process) until cancelled."""
    while True:
        await asyncio.sleep(CONTROL_POLL_S)
        sync_control(ctx)


def order_restart(ctx: TargetContext, refuse_s: float, share: float = 1.0) -> int:
    """Restart every process: drop connections (all, or ``share``) with 1012, refuse for
    ``refuse_s``."""
    epoch = ctx.control.restart(refuse_s, share)
    ctx.counters[Stat.restarts] += 1
    sync_control(ctx)
    return epoch


async def run_restart_schedule(ctx: TargetContext) -> None:
    """Honour the ``restart=EVERY_S:REFUSE_S`` fault (run in one process only)."""
    next_due: float | None = None
    current = None
    while True:
        await asyncio.sleep(SCHEDULE_POLL_S)
        ctx.settings.refresh()
        fault = ctx.settings.faults.get("restart")
        now = time.monotonic()
        if fault is None:
            next_due, current = None, None
        elif fault != current or next_due is None:
            next_due, current = now + fault.every_s, fault
        elif now >= next_due:
            next_due = now + fault.every_s
            ctx.count_fault("restart")
            order_restart(ctx, fault.refuse_s)
