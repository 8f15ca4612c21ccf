"""The one line that tells a user why every simulated user was refused, and what to check."""

from __future__ import annotations

from collections.abc import Mapping

TOKEN_SOURCES = "the token source (--token, --tokens-file, --jwt-secret or --login-file)"


def hint_for(status: str) -> str:
    """What to check for one kind of refusal (a handshake status, a close code, a REST call)."""
    code = status.rsplit(" ", 1)[-1]
    if "/auth/" in status:
        return "the credentials in --login-file and --api-key"
    if code == "403":
        return "--api-key (sent as X-API-Key) and what the token may access"
    if code == "404":
        return "--consultation-id (the target does not know that consultation)"
    if code in {"401", "1008", "4001", "4401"} or status.startswith("close"):
        return f"{TOKEN_SOURCES} and --api-key"
    return f"--api-key, {TOKEN_SOURCES} and --consultation-id"


def refusal_line(stops: Mapping[str, int]) -> str:
    """``every user stopped: the target refused them (401 ×5); check …``.

    Args:
        stops: users stopped, by what the target answered (``"401"``, ``"close 4001"``,
            ``"POST /auth/login 401"``…).
    """
    ranked = sorted(stops.items(), key=lambda item: (-item[1], item[0]))
    answered = ", ".join(f"{status} ×{count}" for status, count in ranked)
    return (
        f"every user stopped: the target refused them ({answered}); check {hint_for(ranked[0][0])}"
    )
