"""The reconnect storm: at a set moment the target drops every connection.

Against the reference target the storm is ordered through its admin API
(``POST /admin/restart {"refuse_s": N, "share": S}``: every connection, or a random share S
of them, closed with 1012, handshakes
refused with 503 for N seconds), by the master (or the single process) only, once. Against a
real backend, leave ``--storm-at`` unset and cause the storm yourself (a rolling restart);
the measurement is the same. The moment is written to ``events.jsonl`` as kind ``storm``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from loadtest.session import Endpoints
from loadtest.users.recording import utc_iso


def order_restart(host: str, refuse_s: float, share: float) -> None:
    """Ask the reference target to drop ``share`` of the connections and refuse handshakes
    for ``refuse_s`` seconds."""
    url = f"{Endpoints.from_base_url(host).http_base}/admin/restart"
    body = {"refuse_s": refuse_s, "share": share}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        response.read()


def _storm_later(environment: Any, at_s: float, refuse_s: float, share: float) -> None:
    gevent.sleep(at_s)
    collector = environment.loadtest_collector
    collector.event(
        {
            "time_utc": utc_iso(time.time()),
            "worker": collector.worker_name,
            "kind": "storm",
            "refuse_s": refuse_s,
            "share": share,
        }
    )
    try:
        order_restart(environment.host, refuse_s, share)
    except OSError as exc:
        collector.event(
            {"time_utc": utc_iso(time.time()), "kind": "storm_failed", "detail": str(exc)}
        )


def install() -> None:
    """Register the storm trigger (the storm scenario calls this once, at import)."""

    @events.test_start.add_listener
    def _schedule(environment: Any, **_: Any) -> None:
        options = environment.parsed_options
        if isinstance(environment.runner, WorkerRunner) or not options.storm_at:
            return
        gevent.spawn(
            _storm_later, environment, options.storm_at, options.storm_refuse, options.storm_share
        )
