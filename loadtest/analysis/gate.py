"""The built-in gate and the exit code a finished run deserves, from its summary alone.

Pure and dependency-free, so the load generator, the CLI and a report rebuilt years later all
decide the same way. Exit codes are the contract's (``../shared/CONTRACT.md``): 0 ok, 1 the
run is incomplete, 3 a check failed or was inconclusive, 130 / 143 interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_SLO_FAILED = 3
EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}

STREAMS_CHECK = "streams_completed > 0"
CONNECTIONS_CHECK = "connections_opened > 0"
AUTH_CHECK = "users_stopped_on_auth < users"
SMOKE_CHECK = "smoke: every session starts and every stream completes"


def builtin_checks(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks every run is judged by, with or without an SLO file.

    A run that sends messages must complete one; an idle run (no message sent) must open a
    connection; and a run whose every user gave up on an auth refusal fails whatever it
    completed before.
    """
    counts = summary.get("counts", {})
    started = int(counts.get("streams_started", 0))
    key, name = (
        ("streams_completed", STREAMS_CHECK)
        if started
        else (
            "connections_opened",
            CONNECTIONS_CHECK,
        )
    )
    value = int(counts.get(key, 0))
    checks: list[dict[str, Any]] = [
        {
            "check": name,
            "verdict": "pass" if value > 0 else "fail",
            "value": value,
            "samples": started or value,
            "builtin": True,
        }
    ]
    stopped = summary.get("stopped") or {}
    if stopped.get("reason") == "smoke":
        checks.append(
            {
                "check": SMOKE_CHECK,
                "verdict": "fail",
                "value": None,
                "samples": 0,
                "builtin": True,
                "detail": stopped.get("detail", ""),
            }
        )
    if stopped.get("reason") == "auth":
        checks.append(
            {
                "check": AUTH_CHECK,
                "verdict": "fail",
                "value": int(stopped.get("users", 0)),
                "samples": int(stopped.get("users", 0)),
                "builtin": True,
                "detail": stopped.get("detail", ""),
            }
        )
    return checks


def slo_section(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """``summary.json``'s ``slo``: passed only when every check passed."""
    verdicts = {check["verdict"] for check in checks}
    verdict = "pass"
    if "fail" in verdicts:
        verdict = "fail"
    elif "inconclusive" in verdicts:
        verdict = "inconclusive"
    return {"passed": verdict == "pass", "verdict": verdict, "checks": checks}


def exit_code(summary: Mapping[str, Any]) -> int:
    """What a CI job should see: interrupted beats incomplete beats a failed check."""
    interrupted = summary.get("interrupted")
    if interrupted:
        return EXIT_BY_SIGNAL.get(str(summary.get("interrupted_by")), EXIT_BY_SIGNAL["SIGINT"])
    if summary.get("incomplete"):
        return EXIT_INCOMPLETE
    slo = summary.get("slo") or {}
    if slo.get("verdict", "pass") != "pass":
        return EXIT_SLO_FAILED
    return EXIT_OK
