"""Test-wide set-up.

Locust monkey-patches the standard library with gevent as soon as it is imported, and our
transport is gevent-native, so the whole test process is patched first, exactly as a Locust
process is. Consequence: servers under test never run in a thread of this process (an asyncio
loop in a patched thread would block every greenlet); they run in subprocesses.
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402  (after patching, as every test module)
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (the connecting side, the accepted side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        connecting = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    with connecting, accepted:
        yield connecting, accepted
