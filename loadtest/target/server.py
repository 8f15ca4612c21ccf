"""Run one server process: listen, announce readiness, serve until SIGINT/SIGTERM, shut down.

Shutdown closes every socket with 1001, waits briefly for the close handshakes, and flushes the
ground truth, so a ``kill -TERM`` never loses records.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from time import perf_counter

from aiohttp import web

from loadtest.errors import LoadtestError
from loadtest.target import ground_truth
from loadtest.target.app import build_app
from loadtest.target.config import ServerConfig
from loadtest.target.connection import CLOSE_GOING_AWAY
from loadtest.target.context import build_context
from loadtest.target.control import ControlPlane
from loadtest.target.lifecycle import close_all, run_restart_schedule, watch_control

READY_PREFIX = "LOADTEST_TARGET_READY"
SHUTDOWN_GRACE_S = 1.5
LISTEN_BACKLOG = 4096


def url_host(host: str) -> str:
    """The host to put in the announced URL (a wildcard address is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def announce_ready(host: str, port: int, scheme: str = "http") -> None:
    """Print the one line launchers wait for, and flush it."""
    print(f"{READY_PREFIX} {scheme}://{url_host(host)}:{port}", flush=True)


async def serve_process(config: ServerConfig, control: ControlPlane, index: int, *,
                        reuse_port: bool, on_ready: Callable[[int], None]) -> None:
    """Serve as process ``index`` until SIGINT or SIGTERM.

    Raises:
        LoadtestError: the port could not be bound.
    """
    loop = asyncio.get_running_loop()
    ctx = build_context(config, control, index)
    runner = web.AppRunner(build_app(ctx), access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port or None,
                       backlog=LISTEN_BACKLOG, ssl_context=config.ssl_context())
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise LoadtestError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    background = [asyncio.create_task(watch_control(ctx))]
    if index == 0:
        background.append(asyncio.create_task(run_restart_schedule(ctx)))
    if ctx.ground_truth is not None:
        background.append(asyncio.create_task(ctx.ground_truth.flush_periodically()))
        ctx.ground_truth.write({"event": "server", "schema": ground_truth.SCHEMA,
                                "t": perf_counter(), "process": index,
                                "clock": "time.perf_counter (CLOCK_MONOTONIC)",
                                "profile": config.profile.name})
    on_ready(runner.addresses[0][1])
    try:
        await stop.wait()
    finally:
        close_all(ctx, CLOSE_GOING_AWAY, "server shutting down")
        deadline = loop.time() + SHUTDOWN_GRACE_S
        while ctx.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for task in background:
            task.cancel()
        with contextlib.suppress(Exception):
            await runner.cleanup()
        if ctx.ground_truth is not None:
            ctx.ground_truth.close()


def run_single(config: ServerConfig) -> None:
    """Serve in this process (``--processes 1``)."""
    control = ControlPlane(1, config.faults)
    if config.ground_truth is not None:
        ground_truth.truncate(config.ground_truth)
    def on_ready(port: int) -> None:
        announce_ready(config.host, port, config.scheme)

    asyncio.run(serve_process(config, control, 0, reuse_port=False, on_ready=on_ready))
    sys.stdout.flush()
