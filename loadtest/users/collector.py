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
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import (
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)

from loadtest.metrics.aggregate import RunAggregate
from loadtest.metrics.event_log import EventLogWriter
from loadtest.metrics.generator_health import (
    GeneratorHealth,
    saturation_reasons,
)
from loadtest.metrics.interval_log import IntervalLogWriter
from loadtest.metrics.recorder import IntervalRecorder
from loadtest.metrics.stream_rows import StreamRowWriter
from loadtest.metrics.window import MetricWindow
from loadtest.rundir import default_run_dir
from loadtest.timespan import timespan_seconds
from loadtest.users.live_slo import LiveJudge
from loadtest.users.quiet_start import settle_before_load
from loadtest.users.ramp import RampTracker, fleet_connected_at
from loadtest.users.report_process import keep_slo_file, make_report
from loadtest.users.run_guard import RunGuard
from loadtest.users.run_record import write_run_json

WIRE_KEY = "loadtest"
#: How long a window stays open to stragglers before it is written out and dropped from
#: memory: two worker report intervals (3 s each) and a margin.
SEAL_AFTER_S = 8.0
#: Stream rows formatted and written per slice; between slices the writer lets the loop run.
#: A window's rows written in one go blocked every socket for ~10 ms at 500 streams/s
#: (17 µs a row), which showed as the client's ttfc overhead p99. The total is the same in
#: any slicing; smaller slices only shorten the longest wait a read can have (10 rows:
#: ~0.2 ms) for one loop iteration more per slice (~10 µs).
ROWS_PER_SLICE = 10
#: Any sleep above 0 waits for the next loop iteration, so pending reads run first
#: (``gevent.sleep(0)`` may resume this greenlet before the loop polls).
SLICE_PAUSE_S = 0.0001


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
        #: Rows taken from ``_rows`` but not yet in streams.csv (the roller may be killed
        #: mid-write; ``finish`` writes what it left).
        self._unwritten: deque[dict[str, Any]] = deque()
        self._events: list[dict[str, Any]] = []
        self._greenlets: list[gevent.Greenlet] = []
        self.started_at = time.time()
        #: The load period: Locust's test_start → test_stopping (what duration_s measures).
        self.load_started: float | None = None
        self.load_stopped: float | None = None
        #: When Locust reported every user spawned, and when those users had all made their
        #: first connection attempt: the steady state starts at the later (+ warm-up).
        self.ramp = RampTracker(on_connected=self._on_ramp_connected)
        #: Master: each worker's ramp moment, as it shipped it.
        self._ramp_by_worker: dict[str, float] = {}
        self.warmup_s = float(timespan_seconds(str(getattr(options, "warmup", "0") or "0")))
        #: A step load's steps as they really ran (:class:`~loadtest.users.shapes.StepRecord`).
        self.load_steps: list[dict[str, Any]] = []
        self._workers_seen: set[str] = set()
        self._quitting = False
        self.guard = RunGuard(environment, self, self.worker_name, self.role)
        self._judge: LiveJudge | None = None
        self.finished = False
        self.aggregate: RunAggregate | None = None
        self.run_dir: Path | None = None
        if self.role != "worker":
            # The summary is built from the files afterwards: keep totals, not window digests.
            self.aggregate = RunAggregate(keep_digests=False)
            self.run_dir = self._open_run_dir(options)
            self._log = IntervalLogWriter(self.run_dir)
            self._streams = StreamRowWriter(self.run_dir / "streams.csv")
            self._event_log = EventLogWriter(self.run_dir / "events.jsonl")
            spec = keep_slo_file(getattr(options, "slo", "") or "", self.run_dir)
            if spec is not None and spec.abort_on_fail and spec.window_spans():
                self._judge = LiveJudge(spec, self._steady_from, self.guard.abort_on)
            self._write_run_json(final=False)
        self.health = GeneratorHealth(self.recorder) if self.role != "master" else None
        if self.role == "local":
            self._greenlets.append(gevent.spawn(self._roll_windows))
        if self.role != "worker" and self.progress_every_s > 0:
            self._greenlets.append(gevent.spawn(self._progress))
        if self.role == "master":
            self.guard.watch_workers()

    # --- MetricsSink (hot path: O(1), no I/O) -------------------------------------------

    def record(self, metric: str, value_ms: float) -> None:
        self.recorder.record(metric, value_ms)

    def record_many(self, metric: str, values_ms: Iterable[float]) -> None:
        self.recorder.record_many(metric, values_ms)

    def count(self, key: str, n: int = 1, by: str | None = None) -> None:
        self.recorder.count(key, n, by)

    def row(self, row: dict[str, Any]) -> None:
        self._rows.append(row)  # the recorder's own fresh dict, taken as it is

    def event(self, event: Mapping[str, Any]) -> None:
        self._events.append(dict(event))

    # --- generator health: sampled only while load runs --------------------------------

    def on_test_start(self, **_: Any) -> None:
        """Start sampling: start-up (imports, connecting to the master) is not load, and
        its one-off costs are paid now (:func:`settle_before_load`), before any stream."""
        if self.load_started is None:
            self.load_started = time.time()
            self.guard.catch_interrupts()
        if self.health is not None and not self.health.running:
            settle_before_load()
            self.health.start()

    @property
    def spawning_completed(self) -> float | None:
        return self.ramp.spawning_completed

    def ramp_connected_at(self) -> float | None:
        """When every user of the ramp had made its first connection attempt (in a
        distributed run: every worker's users), ``None`` until then."""
        if self.role == "master":
            if self.spawning_completed is None:
                return None
            return fleet_connected_at(
                self._ramp_by_worker, self._workers_seen, self.spawning_completed
            )
        return self.ramp.connected_at

    def _steady_from(self) -> float | None:
        connected = self.ramp_connected_at()
        return None if connected is None else connected + self.warmup_s

    def on_spawning_complete(self, **_: Any) -> None:
        if self.spawning_completed is None:
            self.ramp.spawning_complete()
            if self.run_dir is not None:
                self._write_run_json(final=False)

    def _on_ramp_connected(self) -> None:
        if self.health is not None:
            # The users' sessions, connections and greenlets were all made since the freeze
            # at test start: move them out of the collector's reach too, or every full
            # collection re-scans them (27-37 ms at 500 users, measured) in the middle of
            # the steady state. No collect() first: that would be the same pause; the few
            # dead cycles frozen with them stay (bounded, once per run).
            gc.freeze()
        if self.run_dir is not None:
            self._write_run_json(final=False)

    def record_steps(self, steps: list[dict[str, Any]]) -> None:
        """A step load moved on (master or single process): keep its steps in ``run.json``."""
        self.load_steps = steps
        if self.run_dir is not None and not self.finished:
            self._write_run_json(final=False)

    def on_test_stopping(self, **_: Any) -> None:
        """Stop sampling before users are killed: tearing down is not load either."""
        if self.load_stopped is None:
            self.load_stopped = time.time()
        if self.health is not None and self.health.running:
            self.health.stop()

    # --- window flow ------------------------------------------------------------------

    def _roll_windows(self) -> None:
        while True:
            gevent.sleep(self.window_s - (time.time() % self.window_s) + 0.001)
            self._absorb(self.recorder.roll(), *self._take_rows(), cooperative=True)

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
        cooperative: bool = False,
    ) -> None:
        """Merge windows, write the ones no worker can still add to, append rows and events.

        ``cooperative`` (the load generator's own roller): write rows in slices, yielding to
        the loop between them, so the write never holds up reading a socket for long."""
        assert self.aggregate is not None
        pause = self._pause_writing if cooperative else None
        for window in windows:
            self.aggregate.add(window, copy=False)
        self._event_log.write_all(events)
        self._unwritten.extend(rows)
        # Merging a window at 500 streams takes ~0.8 ms and encoding it as much again: let
        # reads waiting meanwhile run in between. Killed here, nothing is lost: the merged
        # windows are in the aggregate and the rows in _unwritten, and finish() writes both.
        if pause is not None:
            pause()
        # A single process rolls its own windows, whole: nothing can still arrive for them.
        wait = SEAL_AFTER_S if self.role == "master" else 0.0
        before = float("inf") if final else time.time() - wait
        for window in self.aggregate.seal(before):
            self._log.write(window, notes=saturation_reasons(window))
            if self._judge is not None:
                self._judge.add(window)
        if self._judge is not None:
            self._judge.close_before(before)
        self._streams.drain(self._unwritten, ROWS_PER_SLICE, pause)

    @staticmethod
    def _pause_writing() -> None:
        gevent.sleep(SLICE_PAUSE_S)

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        """Worker: ship closed windows (all of them, partial too, once stopping) and rows."""
        runner = self.environment.runner
        stopping = runner is not None and runner.state in (STATE_STOPPING, STATE_STOPPED)
        final = stopping or self._quitting
        windows = self.recorder.flush() if final else self.recorder.roll()
        rows, events = self._take_rows()
        data[WIRE_KEY] = {
            "windows": [window.to_wire() for window in windows],
            "rows": rows,
            "events": events,
            "ramp_connected_s": self.ramp.connected_at,
            **self.guard.wire(),
        }

    def ship_before_quitting(self, **_: Any) -> None:
        """Worker quitting on its own (SIGTERM: a pod evicted or rolled): send everything it
        measured, the open window too, before Locust tells the master it quit; the master
        forgets a worker at its quit message, which would drop up to a report interval
        (3 s) of its streams. Locust has no public call for a report: ``_send_stats`` is the
        one its heartbeat loop makes."""
        runner = self.environment.runner
        if self.role != "worker" or self._quitting or not isinstance(runner, WorkerRunner):
            return
        self._quitting = True
        runner._send_stats()

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        """Master: merge what a worker shipped."""
        self._workers_seen.add(client_id)
        shipped = data.get(WIRE_KEY)
        if not shipped:
            return
        windows = [MetricWindow.from_wire(wire) for wire in shipped.get("windows", [])]
        own_rows, own_events = self._take_rows()  # the master's own (e.g. a storm marker)
        rows = own_rows + list(shipped.get("rows", []))
        self._absorb(windows, rows, own_events + list(shipped.get("events", [])))
        ramp_connected = shipped.get("ramp_connected_s")
        if isinstance(ramp_connected, int | float):
            self._ramp_by_worker[client_id] = float(ramp_connected)
        self.guard.absorb(client_id, shipped)

    # --- finishing --------------------------------------------------------------------

    def finish(self) -> None:
        """Write the last windows and the final ``run.json``, then have ``summary.json`` and
        the reports made from them in a process of their own. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self.on_test_stopping()
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self.guard.stop()
        if self.role == "worker":
            return
        self.guard.note_missing_workers()
        windows = self.recorder.flush() if self.role == "local" else []
        self._absorb(windows, *self._take_rows(), final=True)
        assert self.run_dir is not None and self.aggregate is not None
        self._streams.close()
        self._event_log.close()
        self._log.close()
        self._write_run_json(final=True)
        print(self.progress_line(), file=sys.stderr, flush=True)
        # The report's decision is the run's, 0 included: otherwise Locust would exit 1 on
        # any failed request (its --exit-code-on-error), whatever the SLO said.
        self.environment.process_exit_code = make_report(
            self.run_dir, self.environment.parsed_options
        )

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
        name = (
            getattr(options, "loadtest_scenario", "")
            or Path(str(getattr(options, "locustfile", "") or "locustfile")).stem
        )
        out = getattr(options, "loadtest_out", "") or ""
        run_dir = Path(out) if out else default_run_dir(name)
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def _write_run_json(self, final: bool) -> None:
        assert self.run_dir is not None
        outcome = self.guard.summary_fields()
        write_run_json(
            self.run_dir,
            self.environment,
            role=self.role,
            started_at=self.started_at,
            workers=len(self._workers_seen),
            load={
                "started_s": self.load_started,
                "stopped_s": self.load_stopped,
                "spawning_complete_s": self.spawning_completed,
                "ramp_connected_s": self.ramp_connected_at(),
                "warmup_s": self.warmup_s,
                "window_s": self.window_s,
                **({"steps": self.load_steps} if self.load_steps else {}),
            },
            outcome={k: outcome[k] for k in ("interrupted_by", "stopped", "incomplete", "aborted")},
            final=final,
            connections_by_clock=self._connections_by_clock(),
        )

    def _connections_by_clock(self) -> dict[str, int]:
        """Connections opened so far by receive clock, from the merged windows (a worker's
        arrive with its reports)."""
        if self.aggregate is None:
            return {}
        return dict(self.aggregate.totals.breakdowns.get("connections_opened", {}))
