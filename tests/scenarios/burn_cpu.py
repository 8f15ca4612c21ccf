"""Test scenario: steady chat while a greenlet hogs the generator's CPU without yielding.

Used to prove that a saturated load generator is detected and flagged.
"""

import time

import gevent
from locust import events
from locust.runners import MasterRunner

from loadtest.users import ChatUser


class Chat(ChatUser):
    pass


@events.test_start.add_listener
def _burn(environment, **_):
    if isinstance(environment.runner, MasterRunner):
        return

    def hog() -> None:
        while True:
            started = time.perf_counter()
            while time.perf_counter() - started < 0.3:  # 300 ms without yielding
                pass
            gevent.sleep(0.05)

    gevent.spawn(hog)
