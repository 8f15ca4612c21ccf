"""Collect metrics across Locust processes into one run directory.

One :class:`RunCollector` lives in each Locust process, attached to its ``Environment``:

* standalone: records, closes a window every ``--window`` seconds, writes the run directory;
* worker: records, and ships closed windows and stream rows with Locust's own worker→master
  report (``report_to_master``), flushing the partial last window on the final report;
* master: merges workers' windows (``worker_report``) and writes the run directory.

So a distributed run's directory has the same form as a single-process one. The run
directory is finished on ``quitting``, which Locust fires after the workers' final reports.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
from locust.env import Environment
from locust.runners import (
    STATE_MISSING,
    STATE_RUNNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)

from loadtest.analysis.gate import builtin_checks, exit_code, slo_section
from loadtest.metrics.event_log import EventLogWriter
from loadtest.metrics.generator_health import (
    GeneratorHealth,
    generator_summary,
    saturation_reasons,
)
from loadtest.metrics.interval_log import IntervalLogWriter
from loadtest.metrics.stream_rows import StreamRowWriter
from loadtest.metrics.window import IntervalRecorder, MetricWindow, RunAggregate
from loadtest.rundir import default_run_dir, write_json
from loadtest.session import EndReason
from loadtest.users.recording import utc_iso
from loadtest.users.refusal import refusal_line

WIRE_KEY = "loadtest"
#: How long a window stays open to stragglers before it is written out and dropped from
#: memory: two worker report intervals (3 s each) and a margin.
SEAL_AFTER_S = 8.0
SUMMARY_SCHEMA = "loadtest.summary/1"


class RunCollector:
    """This process's share of the measurement (see the module docstring)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        options = environment.parsed_options
        self.window_s = float(getattr(options, "window", 1.0) or 1.0)
        self.progress_every_s = float(getattr(options, "progress_every", 5.0) or 0.0)
        runner = environment.runner
        self.role = (
            "master"
            if isinstance(runner, MasterRunner)
            else "worker"
            if isinstance(runner, WorkerRunner)
            else "local"
        )
        self.worker_name = f"{socket.gethostname()}-{os.getpid()}"
        self.recorder = IntervalRecorder(window_s=self.window_s)
        self._rows: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._greenlets: list[gevent.Greenlet] = []
        self.started_at = time.time()
        #: The load period: Locust's test_start → test_stopping (what duration_s measures).
        self.load_started: float | None = None
        self.load_stopped: float | None = None
        self._workers_seen: set[str] = set()
        #: Locust client id → our worker name (``host-pid``), from the workers' reports.
        self._worker_names: dict[str, str] = {}
        #: Workers that stopped sending heartbeats (killed, or their machine died).
        self.workers_lost: dict[str, str] = {}
        #: Users stopped for good on an auth refusal, by what the target answered.
        self._auth_stops: Counter[str] = Counter()
        #: Master: each worker's last word on its running users and auth stops.
        self._worker_users: dict[str, tuple[int, dict[str, int]]] = {}
        self.stopped: dict[str, Any] | None = None
        #: ``"SIGINT"`` / ``"SIGTERM"`` once the run was interrupted.
        self.interrupted_by: str | None = None
        self.finished = False
        self.aggregate: RunAggregate | None = None
        self.run_dir: Path | None = None
        if self.role != "worker":
            self.aggregate = RunAggregate()
            self.run_dir = self._open_run_dir(options)
            self._log = IntervalLogWriter(self.run_dir)
            self._streams = StreamRowWriter(self.run_dir / "streams.csv")
            self._event_log = EventLogWriter(self.run_dir / "events.jsonl")
            self._write_run_json(final=False)
        self.health = GeneratorHealth(self.recorder) if self.role != "master" else None
        if self.role == "local":
            self._greenlets.append(gevent.spawn(self._roll_windows))
        if self.role != "worker" and self.progress_every_s > 0:
            self._greenlets.append(gevent.spawn(self._progress))
        if self.role == "master":
            self._greenlets.append(gevent.spawn(self._watch_workers))

    # --- MetricsSink (hot path: O(1), no I/O) -------------------------------------------

    def record(self, metric: str, value_ms: float) -> None:
        self.recorder.record(metric, value_ms)

    def record_many(self, metric: str, values_ms: Iterable[float]) -> None:
        self.recorder.record_many(metric, values_ms)

    def count(self, key: str, n: int = 1, by: str | None = None) -> None:
        self.recorder.count(key, n, by)

    def row(self, row: Mapping[str, Any]) -> None:
        self._rows.append(dict(row))

    def event(self, event: Mapping[str, Any]) -> None:
        self._events.append(dict(event))

    # --- generator health: sampled only while load runs --------------------------------

    def on_test_start(self, **_: Any) -> None:
        """Start sampling: start-up (imports, connecting to the master) is not load.

        Also move everything allocated so far (Locust, pandas, our modules: ~10^6 objects)
        out of the garbage collector's reach with ``gc.freeze()``: otherwise each full
        collection re-scans them and stalls every greenlet for ~60 ms mid-run (measured),
        which lands in whatever latency it overlaps.
        """
        if self.load_started is None:
            self.load_started = time.time()
            self._catch_interrupts()
        if self.health is not None and not self.health.running:
            gc.collect()
            gc.freeze()
            self.health.start()

    def on_test_stopping(self, **_: Any) -> None:
        """Stop sampling before users are killed: tearing down is not load either."""
        if self.load_stopped is None:
            self.load_stopped = time.time()
        if self.health is not None and self.health.running:
            self.health.stop()

    # --- interrupts ---------------------------------------------------------------------

    def _catch_interrupts(self) -> None:
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
        self.count("users_stopped", by=f"auth {status}")
        self.event(
            {
                "time_utc": utc_iso(time.time()),
                "worker": self.worker_name,
                "kind": "user_stopped",
                "reason": "auth",
                "status": status,
                "detail": reason.detail,
            }
        )
        if self.role == "local" and sum(self._auth_stops.values()) == 1:
            self._greenlets.append(gevent.spawn(self._watch_local_users))

    def _watch_local_users(self) -> None:
        runner = self.environment.runner
        while runner is not None:
            gevent.sleep(0.2)
            if runner.state == STATE_RUNNING and runner.user_count == 0:
                self._stop_refused_run(dict(self._auth_stops))
                return

    def _check_worker_users(self) -> None:
        """Master: every worker has no user left, and some stopped on an auth refusal."""
        runner = self.environment.runner
        if self.stopped is not None or runner is None or runner.state != STATE_RUNNING:
            return
        reports = self._worker_users.values()
        stops: Counter[str] = Counter()
        for _running, by_status in reports:
            stops.update(by_status)
        if stops and all(running == 0 for running, _ in reports):
            self._stop_refused_run(dict(stops))

    def _stop_refused_run(self, stops: dict[str, int]) -> None:
        line = refusal_line(stops)
        self.stopped = {"reason": "auth", "users": sum(stops.values()), "by_status": stops,
                        "detail": line}  # fmt: skip
        print(f"loadtest: error: {line}", file=sys.stderr, flush=True)
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)

    # --- lost workers -------------------------------------------------------------------

    def _watch_workers(self) -> None:
        """Master: notice workers that stop sending heartbeats (Locust marks them missing)."""
        while True:
            gevent.sleep(1.0)
            self._note_missing_workers()

    def _note_missing_workers(self) -> None:
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
                self.event(
                    {"time_utc": utc_iso(time.time()), "worker": name, "kind": "worker_lost"}
                )

    # --- window flow ------------------------------------------------------------------

    def _roll_windows(self) -> None:
        while True:
            gevent.sleep(self.window_s - (time.time() % self.window_s) + 0.001)
            self._absorb(self.recorder.roll(), *self._take_rows())

    def _take_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The stream rows and lifecycle events recorded since the last call."""
        rows, self._rows = self._rows, []
        events, self._events = self._events, []
        return rows, events

    def _absorb(
        self,
        windows: list[MetricWindow],
        rows: list[dict[str, Any]],
        events: list[dict[str, Any]],
        *,
        final: bool = False,
    ) -> None:
        """Merge windows, write the ones no worker can still add to, append rows and events."""
        assert self.aggregate is not None
        for window in windows:
            self.aggregate.add(window, copy=False)
        before = float("inf") if final else time.time() - SEAL_AFTER_S
        for window in self.aggregate.seal(before, notes=saturation_reasons):
            self._log.write(window)
        for row in rows:
            self._streams.write(row)
        self._streams.flush()
        self._event_log.write_all(events)

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        """Worker: ship closed windows (all of them, partial too, once stopping) and rows."""
        runner = self.environment.runner
        stopping = runner is not None and runner.state in (STATE_STOPPING, STATE_STOPPED)
        windows = self.recorder.flush() if stopping else self.recorder.roll()
        rows, events = self._take_rows()
        data[WIRE_KEY] = {
            "worker": self.worker_name,
            "windows": [window.to_wire() for window in windows],
            "rows": rows,
            "events": events,
            "users_running": runner.user_count if runner is not None else 0,
            "auth_stops": dict(self._auth_stops),
        }

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        """Master: merge what a worker shipped."""
        self._workers_seen.add(client_id)
        shipped = data.get(WIRE_KEY)
        if not shipped:
            return
        if "worker" in shipped:
            self._worker_names[client_id] = str(shipped["worker"])
        if "users_running" in shipped:
            self._worker_users[client_id] = (
                int(shipped["users_running"]),
                dict(shipped.get("auth_stops") or {}),
            )
        windows = [MetricWindow.from_wire(wire) for wire in shipped.get("windows", [])]
        own_rows, own_events = self._take_rows()  # the master's own (e.g. a storm marker)
        rows = own_rows + list(shipped.get("rows", []))
        self._absorb(windows, rows, own_events + list(shipped.get("events", [])))
        self._check_worker_users()

    # --- finishing --------------------------------------------------------------------

    def finish(self) -> None:
        """Write the last windows, ``summary.json`` and the final ``run.json``. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self.on_test_stopping()
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        if self.role == "worker":
            return
        self._note_missing_workers()
        windows = self.recorder.flush() if self.role == "local" else []
        self._absorb(windows, *self._take_rows(), final=True)
        assert self.run_dir is not None and self.aggregate is not None
        self._streams.close()
        self._event_log.close()
        self._log.close()
        summary = self.build_summary()
        from loadtest.analysis.connections import connections_summary  # pandas: not in workers

        summary["connections"] = connections_summary(self.run_dir, self.window_s)
        write_json(self.run_dir / "summary.json", summary)
        self._write_run_json(final=True)
        code = exit_code(summary)
        if code:
            self.environment.process_exit_code = code
        print(self.progress_line(), file=sys.stderr, flush=True)
        if self.workers_lost:
            print(
                f"loadtest: error: the run is incomplete: {summary['incomplete']['reason']}",
                file=sys.stderr,
                flush=True,
            )
        generator = summary["generator"]
        if generator["saturated"]:
            print(
                "[loadtest] WARNING: the load generator was saturated in "
                f"{len(generator['saturated_windows'])} window(s); latency figures from them "
                "include the generator's own queueing",
                file=sys.stderr,
                flush=True,
            )

    def build_summary(self) -> dict[str, Any]:
        assert self.aggregate is not None
        totals = self.aggregate.totals_summary()
        summary: dict[str, Any] = {
            "schema": SUMMARY_SCHEMA,
            "duration_s": round(
                (self.load_stopped or time.time()) - (self.load_started or self.started_at), 3
            ),
            "metrics": totals["metrics"],
            "counts": totals["counts"],
            "breakdowns": totals["breakdowns"],
            "out_of_range": totals["out_of_range"],
            "generator": generator_summary(self.aggregate),
            "interrupted": self.interrupted_by is not None,
            "interrupted_by": self.interrupted_by,
            "incomplete": self._incomplete(),
            "stopped": self.stopped,
        }
        summary["slo"] = slo_section(builtin_checks(summary))
        return summary

    def _incomplete(self) -> dict[str, Any] | None:
        if not self.workers_lost:
            return None
        names = sorted(self.workers_lost.values())
        return {
            "workers_lost": names,
            "reason": f"{len(names)} worker(s) stopped sending heartbeats mid-run "
            f"({', '.join(names)}); their last windows are missing",
        }

    # --- progress ---------------------------------------------------------------------

    def _progress(self) -> None:
        """One line every few seconds: enough to see a long run is alive and healthy.

        Percentiles here come from the run totals (one histogram scan each, ~1 ms), never
        from per-sample work, so the progress line costs the generator nothing noticeable.
        """
        while True:
            gevent.sleep(self.progress_every_s)
            print(self.progress_line(), file=sys.stderr, flush=True)

    def progress_line(self) -> str:
        assert self.aggregate is not None
        totals = self.aggregate.totals
        counts = totals.counts
        ttfc = totals.histograms.get("ttfc_ms")
        runner = self.environment.runner
        users = runner.user_count if runner is not None else 0
        latency = (
            f"ttfc p50 {ttfc.value_at_percentile_ms(50):.1f} ms "
            f"p99 {ttfc.value_at_percentile_ms(99):.1f} ms"
            if ttfc is not None and ttfc.count
            else "ttfc -"
        )
        return (
            f"[loadtest] {time.time() - (self.load_started or self.started_at):5.0f}s  "
            f"users {users}  "
            f"streams {counts.get('streams_completed', 0)} ok "
            f"{counts.get('streams_failed', 0)} failed  {latency}  "
            f"connections {counts.get('connections_opened', 0)} opened "
            f"{counts.get('connection_failures', 0)} failed"
        )

    # --- run.json ---------------------------------------------------------------------

    def _open_run_dir(self, options: Any) -> Path:
        name = getattr(options, "loadtest_scenario", "") or Path(
            str(getattr(options, "locustfile", "") or "locustfile")
        ).stem
        out = getattr(options, "loadtest_out", "") or ""
        run_dir = Path(out) if out else default_run_dir(name)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _write_run_json(self, final: bool) -> None:
        assert self.run_dir is not None
        options = self.environment.parsed_options
        meta = json.loads(os.environ.get("LOADTEST_RUN_META", "{}") or "{}")
        record = {
            "schema": "loadtest.run/1",
            "scenario": getattr(options, "loadtest_scenario", "") or None,
            "locustfile": getattr(options, "locustfile", None),
            "target": redact_url(self.environment.host or ""),
            "started_utc": _utc(self.started_at),
            "ended_utc": _utc(time.time()) if final else None,
            "role": self.role,
            "workers": len(self._workers_seen),
            "interrupted": self.interrupted_by is not None,
            "host": socket.gethostname(),
            "options": redact(vars(options) if options is not None else {}),
            "versions": _versions(),
            **meta,
        }
        write_json(self.run_dir / "run.json", record)


SECRET_WORDS = frozenset(
    {"secret", "token", "password", "passwd", "credential", "credentials", "auth"}
)  # "auth": Locust's --web-auth user:password


def _looks_secret(name: str) -> bool:
    """``api_key``, ``jwt_secret``, ``token``…: yes; ``id_key``, ``tokens_file``: no."""
    words = name.lower().replace("-", "_").split("_")
    return name.lower().endswith("api_key") or any(word in SECRET_WORDS for word in words)


def redact(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options fit to write down: anything that might be a secret is replaced by a marker."""
    clean: dict[str, Any] = {}
    for name, value in options.items():
        if _looks_secret(name) and value:
            clean[name] = "<redacted>"
        elif isinstance(value, str):
            clean[name] = redact_url(value)
        elif isinstance(value, int | float | bool) or value is None:
            clean[name] = value
        elif isinstance(value, list | tuple):
            clean[name] = [v if isinstance(v, str | int | float | bool) else str(v) for v in value]
        else:
            clean[name] = str(value)
    return clean


def redact_url(text: str) -> str:
    """A URL without the password of its user info (``wss://user:pw@host`` → ``user:***@``)."""
    parts = urlsplit(text)
    if not parts.scheme or parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for package in ("loadtest", "locust", "websockets", "gevent", "hdrhistogram"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
