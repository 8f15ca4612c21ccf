"""Locust users for streaming chat, and the wiring that makes every Locust process measure.

Importing this package (as every scenario does) registers our options and event listeners on
Locust's global ``events``, the way Locust plugins do, so ``locust -f scenarios/chat.py``
needs nothing else.
"""

from __future__ import annotations

import sys
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtest.errors import LoadtestError, UsageError
from loadtest.redaction import Redactor, install_log_redaction, scrub_console
from loadtest.users.arrival import ArrivalUser
from loadtest.users.chat import ChatUser, ConsultationUser
from loadtest.users.collector import RunCollector
from loadtest.users.context import UserContext
from loadtest.users.fleet_rate import listen_for_rate_steps
from loadtest.users.options import add_options
from loadtest.users.shapes import StepLoadShape

__all__ = ["ChatUser", "ConsultationUser"]

# Before anything logs a secret: Locust creates its handlers only after importing the
# locustfile, and every handler (Locust's, ours, websockets', at any level) formats records made
# by this factory, so none writes a key, password or token. Forked workers inherit it.
_LOG_REDACTION = install_log_redaction(Redactor.from_environment())


def check_load_model(environment: Any) -> None:
    """``--arrival-rate`` and open-model users go together, or not at all; a step load's
    options are sound.

    Raises:
        UsageError: one without the other.
    """
    options = environment.parsed_options
    for user_class in environment.user_classes:
        check = getattr(user_class, "check_options", None)
        if check is not None:
            check(options)
    shape = environment.shape_class
    if isinstance(shape, StepLoadShape):
        shape.plan_from(options)  # a step load sets its own load; check it now
        return
    rate = float(getattr(options, "arrival_rate", 0) or 0)
    open_model = any(issubclass(cls, ArrivalUser) for cls in environment.user_classes)
    if rate > 0 and not open_model:
        raise UsageError(
            "--arrival-rate needs an open-model scenario (e.g. 'arrival'); this one's users "
            "are closed-loop"
        )
    if open_model and rate <= 0:
        raise UsageError("this open-model scenario needs --arrival-rate R (per second)")
    if getattr(options, "steps", "") or getattr(options, "rate_steps", ""):
        raise UsageError("--steps and --rate-steps need a step-load scenario ('capacity')")


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    add_options(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    # Imports before this point can take seconds without the event loop running, leaving its
    # cached clock stale: Locust's run-time timer, armed next, would then fire early.
    gevent.get_hub().loop.update_now()
    # Take the record factory back if a plugin replaced it since the import; and Locust's own
    # secret option (the web UI's user:password) is known only now. The console is wrapped
    # here, in a Locust process only, not at import (a test process imports this package).
    redactor = install_log_redaction(_LOG_REDACTION.redactor).redactor
    web_auth = getattr(environment.parsed_options, "web_auth", None) or ""
    redactor.add(web_auth, web_auth.partition(":")[2])
    scrub_console(redactor)
    runner = environment.runner
    try:
        if not isinstance(runner, WorkerRunner):
            check_load_model(environment)
        # A worker may get --host and our options from its master only at test start, so
        # it builds its user context then; a single process fails fast here instead.
        if not isinstance(runner, MasterRunner | WorkerRunner):
            environment.loadtest_context = UserContext.from_options(
                environment.host, environment.parsed_options, 0
            )
        collector = RunCollector(environment)
    except LoadtestError as exc:
        print(f"loadtest: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    environment.loadtest_collector = collector
    environment.events.test_start.add_listener(collector.on_test_start)
    environment.events.test_stopping.add_listener(collector.on_test_stopping)
    environment.events.spawning_complete.add_listener(collector.on_spawning_complete)
    if isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(collector.on_report_to_master)
        # quitting fires its listeners newest first: added now, after the WorkerRunner added
        # its own (which tells the master it quit), this one ships the last windows before.
        environment.events.quitting.add_listener(collector.ship_before_quitting)
        listen_for_rate_steps(environment)
    elif isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(collector.on_worker_report)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    # A worker on another machine receives our options from the master only with the spawn
    # message (Locust's custom_args_from_master), after init: rebuild from them.
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        try:
            environment.loadtest_context = UserContext.from_options(
                environment.host, environment.parsed_options, runner.worker_index
            )
        except LoadtestError as exc:
            print(f"loadtest: error: {exc}", file=sys.stderr, flush=True)
            runner.quit()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    collector = getattr(environment, "loadtest_collector", None)
    if collector is not None:
        collector.finish()
