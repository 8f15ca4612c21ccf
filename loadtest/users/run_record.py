"""``run.json``: what was run, against what, with which versions, and no secret in it."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from locust.env import Environment

from loadtest.receive_stamps import run_clock
from loadtest.rundir import write_json
from loadtest.utc import utc_seconds

RUN_SCHEMA = "loadtest.run/1"


def write_run_json(
    run_dir: Path,
    environment: Environment,
    *,
    role: str,
    started_at: float,
    workers: int,
    load: Mapping[str, Any],
    outcome: Mapping[str, Any],
    final: bool,
    connections_by_clock: Mapping[str, int] | None = None,
) -> None:
    """Write ``run.json`` (atomically): at start, when spawning completes, when the ramp has
    connected, and at the end.

    Args:
        load: the load period as the running side saw it: ``started_s``, ``stopped_s``,
            ``spawning_complete_s``, ``ramp_connected_s`` (epoch seconds), ``warmup_s``,
            ``window_s``; the summary's
            steady state is derived from these.
        outcome: how the run ended: ``interrupted_by``, ``stopped``, ``incomplete``.
        connections_by_clock: connections opened so far by the clock their reads were
            stamped on (``kernel``, ``read``), as the connections reported it.
    """
    options = environment.parsed_options
    meta = json.loads(os.environ.get("LOADTEST_RUN_META", "{}") or "{}")
    record = {
        "schema": RUN_SCHEMA,
        "scenario": getattr(options, "loadtest_scenario", "") or None,
        "locustfile": getattr(options, "locustfile", None),
        "target": redact_url(environment.host or ""),
        "started_utc": utc_seconds(started_at),
        "ended_utc": utc_seconds(time.time()) if final else None,
        "role": role,
        "workers": workers,
        "interrupted": bool(outcome.get("interrupted_by")),
        "load": dict(load),
        "outcome": dict(outcome),
        "host": socket.gethostname(),
        "options": redact(vars(options) if options is not None else {}),
        "receive_clock": receive_clock_of_run(
            run_clock(getattr(options, "receive_clock", "auto"), environment.host or ""),
            connections_by_clock or {},
        ),
        "receive_clock_connections": dict(sorted((connections_by_clock or {}).items())),
        "versions": _versions(),
        **meta,
    }
    write_json(run_dir / "run.json", record)


def receive_clock_of_run(expected: str, connections_by_clock: Mapping[str, int]) -> str:
    """The clock the run's reads were stamped on: the one every connection reported, or
    ``"mixed"`` when they differ, or ``expected`` before any connection opened.

    Each connection decides by its own peer, so a run mixes clocks when, with ``auto``, the
    target's name has loopback and other addresses and connections land on both, or when some
    sockets refuse the stamp option (:func:`loadtest.receive_stamps.enable_receive_stamps`)."""
    used = sorted(clock for clock, count in connections_by_clock.items() if count)
    if not used:
        return expected
    return used[0] if len(used) == 1 else "mixed"


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


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for package in ("loadtest", "locust", "websockets", "gevent", "hdrhistogram"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
