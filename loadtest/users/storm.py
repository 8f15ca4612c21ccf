"""The reconnect storm: at a set moment the target drops every connection.

Against the reference target the storm is ordered through its admin API
(``POST /admin/restart {"refuse_s": N, "share": S}``: every connection, or a random share S
of them, closed with 1012, handshakes
refused with 503 for N seconds), by the master (or the single process) only, once. Against a
real backend, leave ``--storm-at`` unset and cause the storm yourself (a rolling restart);
the measurement is the same. The moment is written to ``events.jsonl`` as kind ``storm``.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from loadtest.errors import UsageError
from loadtest.rest import RestClient, RestError
from loadtest.session import Endpoints
from loadtest.utc import utc_micros

RESTART_PATH = "/admin/restart"


def order_restart(
    host: str, refuse_s: float, share: float, rest: RestClient | None = None
) -> None:
    """Ask the reference target to drop ``share`` of the connections and refuse handshakes
    for ``refuse_s`` seconds.

    Args:
        host: the ``--host`` base URL.
        refuse_s: how long the target refuses handshakes after the drop.
        share: the fraction of connections dropped.
        rest: the client to order it through; a default one (system CAs, 10 s) when not given,
            but pass the run's, so a TLS target with a private CA can be ordered about too.

    Raises:
        RestError: the target refused the order or could not be reached.
    """
    client = rest if rest is not None else RestClient()
    base = Endpoints.from_base_url(host).http_base
    client.post_json(base, RESTART_PATH, {"refuse_s": refuse_s, "share": share})


def _storm_later(environment: Any, at_s: float, refuse_s: float, share: float) -> None:
    gevent.sleep(at_s)
    collector = environment.loadtest_collector
    collector.event(
        {
            "time_utc": utc_micros(time.time()),
            "worker": collector.worker_name,
            "kind": "storm",
            "refuse_s": refuse_s,
            "share": share,
        }
    )
    options = environment.parsed_options
    try:
        rest = RestClient(
            options.open_timeout, insecure=options.insecure, ca_file=options.ca_file or None
        )
        order_restart(environment.host, refuse_s, share, rest)
    except (RestError, UsageError) as exc:
        collector.event(
            {"time_utc": utc_micros(time.time()), "kind": "storm_failed", "detail": str(exc)}
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
