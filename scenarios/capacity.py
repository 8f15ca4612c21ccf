"""Capacity: a step load, to find how much one backend carries within its SLO.

    loadtest run capacity -t 5m --slo scenarios/slo/capacity.toml -- --steps 10,20,40,80
    loadtest run capacity -t 4m -- --rate-steps 2,4,8 --step-time 60s
    locust -f scenarios/capacity.py --headless -t 5m --steps 10,20,40,80 --host ws://…

Options (with defaults): --steps (2,4,8,16) users, one step after the other, or --rate-steps
(none) arrivals per second in the open model, driven by -u arrival drivers; --step-time (30s)
each step is held, counted from when its load was really reached (Locust's ramp, -r, can lag:
every step's request, reach and end times are recorded in run.json's load.steps). The run ends
after the last step, or at -t if that comes first (a warning says so at the start). Users chat
as in the chat scenario (--think-time 1-3); arrivals hold one conversation each (--turns 1).

What it answers: per step, the throughput, percentiles with intervals, SLO attainment and
goodput, and the knee, the highest step whose SLO checks all pass ("holds 40 concurrent users
within ttfc_ms.p95 < 800; fails from 80"), in every report (report.json "capacity"). Pairs with
scenarios/slo/capacity.toml.
"""

from loadtest.users import ChatUser
from loadtest.users.arrival import ArrivalUser
from loadtest.users.shapes import StepLoadShape


class CapacityChat(ChatUser):
    """Closed loop: as many of these as the current --steps step asks for."""


class CapacityArrivals(ArrivalUser):
    """Open model: -u drivers arriving at the current --rate-steps rate between them."""


class Capacity(StepLoadShape):
    """--steps or --rate-steps, each held --step-time once reached."""

    closed_user = CapacityChat
    open_user = CapacityArrivals
