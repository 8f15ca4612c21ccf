"""``--processes N``: fork N server processes that share one port through SO_REUSEPORT.

The parent binds the port first (so ``--port 0`` resolves to one real port for all children and a
busy port fails before any fork), builds the shared control plane, forks, waits until every child
listens, prints the ready line, then only supervises: SIGINT/SIGTERM are forwarded, and a child
that dies takes the whole server down (exit 1) rather than silently serving at reduced capacity.
Children ask the kernel for SIGTERM if the parent dies, so none is ever orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import replace

from loadtest.errors import LoadtestError
from loadtest.target import ground_truth
from loadtest.target.config import ServerConfig
from loadtest.target.control import ControlPlane
from loadtest.target.server import announce_ready, serve_process

STARTUP_TIMEOUT_S = 30.0
CHILD_STOP_TIMEOUT_S = 3.5
_PR_SET_PDEATHSIG = 1


class _Stop(Exception):
    """Raised by the parent's signal handler to leave whatever it is blocked in."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def _bind_port(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise LoadtestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return holder


def _child(config: ServerConfig, control: ControlPlane, index: int, ready_fd: int) -> int:
    """Body of a forked server process; returns its exit code."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    try:
        asyncio.run(serve_process(config, control, index, reuse_port=True,
                                  on_ready=lambda port: os.write(ready_fd, b"r")))
        return 0
    except LoadtestError as exc:
        print(f"process {index}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BaseException:
        traceback.print_exc()
        return 1


def _reap(pids: set[int]) -> list[tuple[int, int]]:
    """Collect children that exited, without blocking."""
    gone = []
    for pid in list(pids):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            pids.discard(pid)
            gone.append((pid, os.waitstatus_to_exitcode(status)))
    return gone


def _stop_children(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S
    while pids and time.monotonic() < deadline:
        _reap(pids)
        time.sleep(0.02)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def run_processes(config: ServerConfig) -> None:
    """Serve with ``config.processes`` forked processes until SIGINT/SIGTERM.

    Raises:
        LoadtestError: the port is unavailable, or a server process failed.
    """
    holder = _bind_port(config.host, config.port)
    config = replace(config, port=holder.getsockname()[1])
    control = ControlPlane(config.processes, config.faults)
    if config.ground_truth is not None:
        ground_truth.truncate(config.ground_truth)
    ready_r, ready_w = os.pipe()
    pids: set[int] = set()
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    failure: str | None = None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for index in range(config.processes):
            pid = os.fork()
            if pid == 0:  # child: never returns
                os.close(ready_r)
                holder.close()
                code = _child(config, control, index, ready_w)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            pids.add(pid)
        os.close(ready_w)
        failure = _await_ready(ready_r, pids, config.processes)
        holder.close()
        if failure is None:
            announce_ready(config.host, config.port, config.scheme)
            while True:
                for pid, code in _reap(pids):
                    failure = f"server process {pid} exited with code {code}"
                if failure:
                    break
                select.select([], [], [], 0.2)
    except _Stop:
        pass
    finally:
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        _stop_children(pids)
        os.close(ready_r)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failure:
        raise LoadtestError(failure)


def _await_ready(ready_r: int, pids: set[int], expected: int) -> str | None:
    """Wait until every child wrote its ready byte; a failure message if one died first."""
    got = 0
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while got < expected:
        if time.monotonic() > deadline:
            return f"server processes not ready after {STARTUP_TIMEOUT_S:g} s"
        readable, _, _ = select.select([ready_r], [], [], 0.1)
        if readable:
            data = os.read(ready_r, expected)
            got += len(data)
            if not data:
                return "server processes exited during start-up"
        for pid, code in _reap(pids):
            return f"server process {pid} exited with code {code} during start-up"
    return None
