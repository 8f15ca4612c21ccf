"""Connection churn: users live for a random lifetime, chat, leave (some abruptly), return.

    loadtest run churn -u 200 -t 10m -- --churn-rate 20 --abrupt-share 0.3
    locust -f scenarios/churn.py --headless -u 200 -t 10m --host ws://… --lifetime 5-30
"""

from loadtest.users.churn import ChurnUser


class Churn(ChurnUser):
    """Comes and goes at the configured churn rate."""
