"""Smoke: does the target work at all? A few users for seconds; the first failure ends the run.

    loadtest run smoke -u 2 -t 15s --host wss://staging.example.com
    locust -f scenarios/smoke.py --headless -u 2 -t 15s --host ws://127.0.0.1:8765

Each user creates a consultation, connects and chats. A session that cannot start or a stream
that does not complete stops the run at once with one line naming what failed (exit 3), so a
broken build costs seconds, not an hour of load. Pairs with scenarios/slo/smoke.toml.
Options: the chat ones (--think-time, --stream-timeout …); lower --reconnect-max-attempts to
fail a dead target faster.
"""

from loadtest.users.smoke import SmokeUser


class Smoke(SmokeUser):
    """Chat, and stop everything at the first failure."""
