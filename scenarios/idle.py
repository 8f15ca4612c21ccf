"""Connection capacity: many idle connections that only heartbeat, held for the whole run.

    loadtest run idle -u 5000 -r 500 -t 10m -- --heartbeat-interval 30
"""

from loadtest.users.idle import IdleUser


class Idle(IdleUser):
    """One consultation, one connection, heartbeats only."""
