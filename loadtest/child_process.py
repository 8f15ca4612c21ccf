"""Child processes that never outlive the tool: the embedded target, Locust itself."""

from __future__ import annotations

import ctypes
import signal


def die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent dies (no-op elsewhere).

    Children run in sessions of their own (so a terminal's Ctrl-C reaches only the tool, which
    decides what each child gets), and a session of one's own also escapes the terminal's
    hang-up: without this, a killed ``loadtest run`` would leave load running.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
