"""Watch for what must end or mark a run: signals, every user refused, workers lost.

One :class:`RunGuard` lives beside each process's collector. What it finds goes into
``summary.json`` (``interrupted``, ``stopped``, ``incomplete``), from which the exit code is
decided (``loadtest/analysis/gate.py``).
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

import gevent
from locust.env import Environment
from locust.runners import STATE_MISSING, STATE_RUNNING, MasterRunner

from loadtest.session import EndReason
from loadtest.users.refusal import refusal_line
from loadtest.utc import utc_micros

SMOKE_HINT = "events.jsonl and locust.log in the run directory"


class Sink(Protocol):
    def count(self, key: str, n: int = 1, by: str | None = None) -> None: ...

    def event(self, event: Mapping[str, Any]) -> None: ...


class RunGuard:
    """This process's watch over the run's end.

    Args:
        environment: Locust's.
        sink: where counts and lifecycle events go (the collector).
        worker_name: ``host-pid`` of this process.
        role: ``local``, ``worker`` or ``master``.
    """

    def __init__(self, environment: Environment, sink: Sink, worker_name: str, role: str) -> None:
        self.environment = environment
        self._sink = sink
        self.worker_name = worker_name
        self.role = role
        #: ``"SIGINT"`` / ``"SIGTERM"`` once the run was interrupted.
        self.interrupted_by: str | None = None
        #: Set when every user stopped on an auth refusal (``summary.stopped``).
        self.stopped: dict[str, Any] | None = None
        #: The windowed SLO check that stopped the run (``abort_on_fail``), if one did.
        self.aborted: dict[str, Any] | None = None
        #: Locust client id → our worker name, for workers that stopped sending heartbeats.
        self.workers_lost: dict[str, str] = {}
        self._auth_stops: Counter[str] = Counter()
        self._worker_names: dict[str, str] = {}
        #: Master: each worker's last word on its running users and auth stops.
        self._worker_users: dict[str, tuple[int, dict[str, int]]] = {}
        self._watcher: gevent.Greenlet | None = None

    def summary_fields(self) -> dict[str, Any]:
        """The keys of ``summary.json`` this guard decides."""
        return {
            "interrupted": self.interrupted_by is not None,
            "interrupted_by": self.interrupted_by,
            "incomplete": self.incomplete(),
            "stopped": self.stopped,
            "aborted": self.aborted,
        }

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.kill(block=False)

    # --- interrupts ---------------------------------------------------------------------

    def catch_interrupts(self) -> None:
        """Know that SIGINT or SIGTERM ended the run, so its summary and exit code say so.

        Installed at test start, after Locust's own SIGTERM handler (which would otherwise
        replace ours); both signals then take Locust's Ctrl-C path (KeyboardInterrupt →
        shutdown → ``quitting``), which writes the run directory. A second signal gets the
        system's default: the process ends at once.
        """
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_interrupt)

    def _on_interrupt(self, signum: int, _frame: object) -> None:
        for other in (signal.SIGINT, signal.SIGTERM):
            signal.signal(other, signal.SIG_DFL)
        if self.interrupted_by is None:
            self.interrupted_by = signal.Signals(signum).name
            if self.role != "worker":
                print(
                    f"[loadtest] interrupted ({self.interrupted_by}): stopping and writing the "
                    "run directory; interrupt again to quit at once",
                    file=sys.stderr,
                    flush=True,
                )
        raise KeyboardInterrupt

    # --- users stopped on an auth refusal ------------------------------------------------

    def user_stopped_on_auth(self, reason: EndReason) -> None:
        """A user gave up on an auth refusal and stops for the rest of the run."""
        status = reason.status or "auth"
        self._auth_stops[status] += 1
        self._sink.count("users_stopped", by=f"auth {status}")
        self._sink.event(
            {
                "time_utc": utc_micros(time.time()),
                "worker": self.worker_name,
                "kind": "user_stopped",
                "reason": "auth",
                "status": status,
                "detail": reason.detail,
            }
        )
        if self.role == "local" and self._watcher is None:
            self._watcher = gevent.spawn(self._watch_local_users)

    def _watch_local_users(self) -> None:
        runner = self.environment.runner
        while runner is not None:
            gevent.sleep(0.2)
            if runner.state == STATE_RUNNING and runner.user_count == 0:
                self._stop_refused_run(dict(self._auth_stops))
                return

    def _stop_refused_run(self, stops: dict[str, int]) -> None:
        line = refusal_line(stops)
        self.stopped = {"reason": "auth", "users": sum(stops.values()), "by_status": stops,
                        "detail": line}  # fmt: skip
        print(f"loadtest: error: {line}", file=sys.stderr, flush=True)
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    # --- smoke tests ----------------------------------------------------------------------

    def fail_fast(self, what: str) -> None:
        """A smoke test's first failure: say what failed and end the run (once)."""
        if self.stopped is not None:
            return
        line = f"smoke test failed: {what}; see {SMOKE_HINT}"
        self.stopped = {"reason": "smoke", "users": 0, "by_status": {}, "detail": line}
        print(f"loadtest: error: {line}", file=sys.stderr, flush=True)
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    # --- abort_on_fail ------------------------------------------------------------------

    def abort_on(self, result: Mapping[str, Any]) -> None:
        """A windowed SLO check was lost and the SLO file says abort: stop the run now."""
        self.aborted = {
            "check": result["check"],
            "value": result.get("value"),
            "window_utc": result.get("worst_window_utc"),
        }
        print(
            f"loadtest: error: SLO check lost, stopping the run (abort_on_fail): "
            f"{result['check']} was {result.get('value')} in the window from "
            f"{result.get('worst_window_utc')}",
            file=sys.stderr,
            flush=True,
        )
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    # --- between worker and master --------------------------------------------------------

    def wire(self) -> dict[str, Any]:
        """Worker → master, with each report: who it is, its users, its auth stops."""
        runner = self.environment.runner
        return {
            "worker": self.worker_name,
            "users_running": runner.user_count if runner is not None else 0,
            "auth_stops": dict(self._auth_stops),
        }

    def absorb(self, client_id: str, shipped: Mapping[str, Any]) -> None:
        """Master: a worker's report; ends the run once no worker has a user left."""
        if "worker" in shipped:
            self._worker_names[client_id] = str(shipped["worker"])
        if "users_running" in shipped:
            self._worker_users[client_id] = (
                int(shipped["users_running"]),
                dict(shipped.get("auth_stops") or {}),
            )
        runner = self.environment.runner
        if self.stopped is not None or runner is None or runner.state != STATE_RUNNING:
            return
        reports = self._worker_users.values()
        stops: Counter[str] = Counter()
        for _running, by_status in reports:
            stops.update(by_status)
        if stops and all(running == 0 for running, _ in reports):
            self._stop_refused_run(dict(stops))

    # --- lost workers -------------------------------------------------------------------

    def watch_workers(self) -> None:
        """Master: notice workers that stop sending heartbeats (Locust marks them missing)."""
        self._watcher = gevent.spawn(self._watch_workers)

    def _watch_workers(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.note_missing_workers()

    def note_missing_workers(self) -> None:
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return
        for client in list(runner.clients.all):
            if client.state == STATE_MISSING and client.id not in self.workers_lost:
                name = self._worker_names.get(client.id, client.id)
                self.workers_lost[client.id] = name
                print(
                    f"[loadtest] WARNING: worker {name} stopped sending heartbeats; the windows "
                    "it shipped are kept, and the run will be marked incomplete",
                    file=sys.stderr,
                    flush=True,
                )
                self._sink.event(
                    {"time_utc": utc_micros(time.time()), "worker": name, "kind": "worker_lost"}
                )

    def incomplete(self) -> dict[str, Any] | None:
        if not self.workers_lost:
            return None
        names = sorted(self.workers_lost.values())
        return {
            "workers_lost": names,
            "reason": f"{len(names)} worker(s) stopped sending heartbeats mid-run "
            f"({', '.join(names)}); their last windows are missing",
        }
