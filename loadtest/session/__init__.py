"""One simulated FitIQ client: a conversation on top of a supervised connection.

``conversation`` sends messages and waits for their replies; ``supervisor`` keeps the
WebSocket open (connect, heartbeat, reconnect by policy, a fresh stream tracker per
connection); ``credentials`` holds the user's token; ``observer`` names what is reported and
why a session ends; ``config`` says where to connect and how to behave.
"""

from loadtest.session.config import WS_PATH, Endpoints, SessionConfig
from loadtest.session.conversation import NORMAL_CLOSE, ConsultationSession
from loadtest.session.observer import EndKind, EndReason, SessionEnded, SessionObserver

__all__ = [
    "NORMAL_CLOSE",
    "WS_PATH",
    "ConsultationSession",
    "EndKind",
    "EndReason",
    "Endpoints",
    "SessionConfig",
    "SessionEnded",
    "SessionObserver",
]
