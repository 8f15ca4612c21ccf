"""The control plane every server process shares: live faults, restart window, counters.

With ``--processes N`` the admin API is answered by whichever process the kernel hands the
connection to, so the state it changes cannot live in that process alone. It lives in one
anonymous shared memory mapping created before the fork:

- a generation number, bumped on every change, that each process compares on its hot paths and
  in a 50 ms poll (one integer read; the JSON is parsed only when it moved);
- the state itself, JSON, written under a fork-shared lock: faults as ``kind -> value text``,
  ``refuse_until`` (a CLOCK_MONOTONIC time, comparable across processes) and ``restart_epoch``;
- one row of 64-bit counters per process; each process writes only its own row, readers sum.

So a fault set through any process reaches all of them before their next stream or handshake,
and ``GET /admin/stats`` totals every process.
"""

from __future__ import annotations

import enum
import json
import mmap
import multiprocessing
import time
from collections.abc import Callable, Mapping
from typing import Any

from loadtest.target.faults import FAULT_KINDS, Fault, parse_fault_value

STATE_BYTES = 64 * 1024
_HEADER_WORDS = 2  # generation, state length
_STATE_OFFSET = _HEADER_WORDS * 8
_COUNTERS_OFFSET = _STATE_OFFSET + STATE_BYTES


class Stat(enum.IntEnum):
    """Per-process counters (index into a process's row)."""

    connections_opened = 0
    connections_closed = enum.auto()
    handshakes_rejected_401 = enum.auto()
    handshakes_rejected_403 = enum.auto()
    handshakes_rejected_404 = enum.auto()
    handshakes_rejected_503 = enum.auto()
    user_messages_received = enum.auto()
    streams_started = enum.auto()
    streams_completed = enum.auto()
    streams_failed = enum.auto()
    streams_cancelled = enum.auto()
    chunks_sent = enum.auto()
    templates_sent = enum.auto()
    error_frames_sent = enum.auto()
    busy_rejections = enum.auto()
    invalid_frames_received = enum.auto()
    pings_received = enum.auto()
    pongs_sent = enum.auto()
    keepalive_timeouts = enum.auto()
    restarts = enum.auto()


FAULT_STAT_BASE = len(Stat)
FAULT_INDEX = {kind: FAULT_STAT_BASE + i for i, kind in enumerate(FAULT_KINDS)}
ROW_WORDS = FAULT_STAT_BASE + len(FAULT_KINDS)


class ControlPlane:
    """Shared state of all server processes; create it before forking.

    Args:
        processes: how many counter rows to provide.
        faults: the faults configured at start.
    """

    def __init__(self, processes: int, faults: Mapping[str, Fault]) -> None:
        self.processes = processes
        self._mm = mmap.mmap(-1, _COUNTERS_OFFSET + processes * ROW_WORDS * 8)
        self._header = memoryview(self._mm)[:_STATE_OFFSET].cast("q")
        self._rows = memoryview(self._mm)[_COUNTERS_OFFSET:].cast("q")
        self._lock = multiprocessing.get_context("fork").Lock()
        self._write({"faults": {k: f.text for k, f in faults.items()},
                     "refuse_until": 0.0, "restart_epoch": 0, "frozen_until": 0.0})

    # -- state -------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._header[0]

    def _write(self, state: dict[str, Any]) -> None:
        data = json.dumps(state).encode()
        if len(data) > STATE_BYTES:
            raise ValueError("control state too large")
        self._mm[_STATE_OFFSET:_STATE_OFFSET + len(data)] = data
        self._header[1] = len(data)
        self._header[0] += 1

    def _read_unlocked(self) -> dict[str, Any]:
        size = self._header[1]
        return json.loads(self._mm[_STATE_OFFSET:_STATE_OFFSET + size])

    def read(self) -> tuple[int, dict[str, Any]]:
        """The generation and state, read consistently."""
        with self._lock:
            return self._header[0], self._read_unlocked()

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the state in place, atomically across processes."""
        with self._lock:
            state = self._read_unlocked()
            change(state)
            self._write(state)
            return state

    def set_fault(self, fault: Fault) -> None:
        self.update(lambda state: state["faults"].__setitem__(fault.kind, fault.text))

    def clear_fault(self, kind: str) -> None:
        self.update(lambda state: state["faults"].pop(kind, None))

    def restart(self, refuse_s: float, share: float = 1.0) -> int:
        """Order every process to drop its connections; refuse handshakes for ``refuse_s``.

        Args:
            refuse_s: how long handshakes (and REST) are answered 503 afterwards.
            share: the fraction of each process's connections dropped (1.0: all), for a
                partial outage such as one of several backend instances restarting.

        Returns the new restart epoch.
        """

        def change(state: dict[str, Any]) -> None:
            state["restart_epoch"] += 1
            state["restart_share"] = share
            state["refuse_until"] = time.monotonic() + refuse_s

        return int(self.update(change)["restart_epoch"])

    def freeze(self, seconds: float) -> float:
        """Stall every reply of every process for ``seconds`` from now, as a GC pause or a
        blocked event loop would: nothing is sent until then, then late frames catch up.

        Returns:
            The CLOCK_MONOTONIC time the freeze ends.
        """
        until = time.monotonic() + seconds
        self.update(lambda state: state.__setitem__("frozen_until", until))
        return until

    # -- counters ----------------------------------------------------------------------------

    def row(self, index: int) -> memoryview:
        """The counter row of process ``index`` (writable view; index with :class:`Stat`)."""
        return self._rows[index * ROW_WORDS:(index + 1) * ROW_WORDS]

    def stats(self) -> dict[str, Any]:
        """Counters summed over processes, plus open connections and per-process figures."""
        rows = [self.row(i).tolist() for i in range(self.processes)]
        totals = [sum(column) for column in zip(*rows, strict=True)]
        result: dict[str, Any] = {"processes": self.processes}
        rejected = {}
        for stat in Stat:
            name = stat.name
            if name.startswith("handshakes_rejected_"):
                rejected[name.rsplit("_", 1)[1]] = totals[stat]
            else:
                result[name] = totals[stat]
        result["handshakes_rejected"] = rejected
        result["open_connections"] = (
            totals[Stat.connections_opened] - totals[Stat.connections_closed]
        )
        result["streams_served"] = totals[Stat.streams_started]
        result["faults_injected"] = {kind: totals[i] for kind, i in FAULT_INDEX.items()}
        result["per_process"] = [
            {"open_connections": row[Stat.connections_opened] - row[Stat.connections_closed],
             "streams_started": row[Stat.streams_started],
             "chunks_sent": row[Stat.chunks_sent]}
            for row in rows
        ]
        return result


class LiveSettings:
    """One process's cached, parsed view of the control state.

    ``refresh()`` costs one integer read when nothing changed, so it is called on every
    handshake and stream start.
    """

    def __init__(self, control: ControlPlane) -> None:
        self._control = control
        self._generation = -1
        self.faults: dict[str, Fault] = {}
        self.refuse_until = 0.0
        self.frozen_until = 0.0
        self.restart_epoch = 0
        self.restart_share = 1.0
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the state if it changed; True when it did."""
        if self._control.generation == self._generation:
            return False
        self._generation, state = self._control.read()
        self.faults = {k: parse_fault_value(k, v) for k, v in state["faults"].items()}
        self.refuse_until = float(state["refuse_until"])
        self.frozen_until = float(state.get("frozen_until", 0.0))
        self.restart_epoch = int(state["restart_epoch"])
        self.restart_share = float(state.get("restart_share", 1.0))
        return True

    def refusing(self) -> bool:
        """Inside a restart window: handshakes get 503."""
        return self.refuse_until > 0.0 and time.monotonic() < self.refuse_until
