"""Reconnect storm: steady chat, then every connection dropped at once; all come back.

    loadtest run storm -u 500 -t 3m -- --storm-at 60 --storm-refuse 5 --reconnect-jitter 0.5

Against the reference target the storm is ordered through its admin API at ``--storm-at``;
against a real backend leave it unset and restart the backend yourself. Reports show the
handshake latency and success during the storm and the time until the fleet is back.
"""

from loadtest.users import ChatUser
from loadtest.users.storm import install

install()


class StormChat(ChatUser):
    """Steady chat that rides out the storm with the reconnect policy."""
