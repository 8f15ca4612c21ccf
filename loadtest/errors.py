"""One exception hierarchy for the whole tool.

Every error a user can cause is a :class:`LoadtestError` whose ``str()`` is a single line fit
for a terminal; the CLI prints it and exits with :attr:`LoadtestError.exit_code`.
"""

from __future__ import annotations


class LoadtestError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class UsageError(LoadtestError):
    """Bad options or input files: exit 2, one line, no traceback."""

    exit_code = 2


class TransportError(LoadtestError):
    """A WebSocket connection could not be opened or broke."""


class HandshakeError(TransportError):
    """The WebSocket handshake failed.

    Args:
        kind: the class of failure as counted in ``connection_failures.by_status``:
            an HTTP status as a string (``"401"``, ``"503"``), or ``"timeout"``, ``"refused"``,
            ``"tls"``, ``"reset"``, ``"dns"``, ``"invalid"``.
        detail: one line for humans; never contains a token or key.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"handshake failed ({kind}){': ' + detail if detail else ''}")

    @property
    def status(self) -> int | None:
        """The HTTP status, when the server answered with one."""
        return int(self.kind) if self.kind.isdigit() else None


class AuthError(LoadtestError):
    """No usable token could be obtained (login refused, bad secret, empty tokens file)."""
