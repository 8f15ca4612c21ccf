"""Test scenario: steady chat while the process blurts its secrets out every way it can.

Used to prove that what bypasses ``logging`` is scrubbed too: ``print``, a warning, an
uncaught exception in a greenlet (gevent's hub prints it to stderr), and a log record whose
exception names the key.
"""

import logging
import os
import sys
import warnings

import gevent
from locust import events
from locust.runners import MasterRunner

from loadtest.users import ChatUser


class Chat(ChatUser):
    pass


@events.test_start.add_listener
def _leak(environment, **_):
    if isinstance(environment.runner, MasterRunner):
        return
    key = os.environ["LOADTEST_API_KEY"]
    print("printed key:", key)
    print("printed to stderr:", key, file=sys.stderr, flush=True)
    warnings.warn(f"warned key {key}", stacklevel=1)

    def crash() -> None:
        raise RuntimeError(f"greenlet died holding {key}")

    gevent.spawn(crash)
    try:
        raise ConnectionError(f"refused X-API-Key {key}")
    except ConnectionError:
        logging.getLogger("tests.leak").exception("logged with a traceback")
