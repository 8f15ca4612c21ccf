"""Spike: steady load, a sudden burst, and the recovery after it.

    loadtest run spike -u 20 -r 20 -t 2m -- --spike-users 100 --spike-at 40 --spike-duration 15
    locust -f scenarios/spike.py --headless -u 20 -r 20 -t 2m --spike-users 100 --host ws://…

Options (with defaults): --spike-users (3 × -u) during the burst, --spike-at (30) seconds
after the start, --spike-duration (10) seconds; the burst's users all start at once. -u, -r and
-t keep their meaning. What it answers: how latency and errors react to a sudden burst and how
fast they recover (read the percentiles over time in report.html). Pairs with
scenarios/slo/spike.toml.
"""

from loadtest.users import ChatUser
from loadtest.users.shapes import SpikeShape


class SpikeChat(ChatUser):
    """Steady chat; the shape adds the burst's users and takes them away again."""


class Spike(SpikeShape):
    """-u users, then --spike-users for --spike-duration seconds, then -u again."""
