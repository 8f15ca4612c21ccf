"""Open model: new conversations arrive at a fixed rate, however the server is doing.

    loadtest run arrival --arrival-rate 20 -t 2m
    locust -f scenarios/arrival.py --headless -u 1 -t 2m --arrival-rate 20 --host ws://…

Each arrival creates a consultation, connects, sends one message (``--turns`` for more),
reads the reply and leaves. ``ttfc_from_intended_ms`` measures from when it was meant to start.
"""

from loadtest.users.arrival import ArrivalUser


class Arrivals(ArrivalUser):
    """Conversations started on a constant (or ``--arrival-process poisson``) schedule."""
