"""Soak: hours of steady load with heartbeats and a little churn, for drift and leaks.

    loadtest run soak -u 200 -r 20 -t 8h --slo scenarios/slo/soak.toml --warmup 5m
    locust -f scenarios/soak.py --headless -u 200 -r 20 -t 8h --host wss://…

Each user chats (--think-time 1-3), heartbeats every --heartbeat-interval (30) s, and now and
then leaves and comes back: it lives --lifetime (600-1800) s, 10 % of departures abrupt
(--abrupt-share 0.1), back after --rejoin-after (1-5) s, so reconnects and token refreshes
happen all night, as on a real app. What it answers: did latency, errors or memory drift over
the night (the report's drift section), and did every window hold (the SLO file). The
generator itself stays memory-flat (bench/soak_memory.py). Pairs with scenarios/slo/soak.toml.
"""

from typing import Any

from locust import events

from loadtest.users.churn import ChurnUser


@events.init_command_line_parser.add_listener
def _soak_defaults(parser: Any) -> None:
    # Long lives and rare abrupt leaves: churn as a night of real app use, not a storm.
    parser.set_defaults(lifetime="600-1800", abrupt_share=0.1, rejoin_after="1-5",
                        heartbeat_interval=30.0)  # fmt: skip


class Soak(ChurnUser):
    """Chat for a long life, leave, come back; heartbeats throughout."""
