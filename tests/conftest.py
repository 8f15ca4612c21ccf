"""Test-wide set-up.

Locust monkey-patches the standard library with gevent as soon as it is imported, and our
transport is gevent-native, so the whole test process is patched first, exactly as a Locust
process is. Consequence: servers under test never run in a thread of this process (an asyncio
loop in a patched thread would block every greenlet); they run in subprocesses.
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402  (after patching, as every test module)
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import pytest  # noqa: E402


@contextmanager
def loopback_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (the connecting side, the accepted side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        connecting = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    with connecting, accepted:
        yield connecting, accepted


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (the connecting side, the accepted side)."""
    with loopback_pair() as pair:
        yield pair


@pytest.fixture(scope="session")
def kernel_stamping_on() -> Iterator[None]:
    """Linux stamps incoming packets only while some socket asks for it, and turns stamping
    on a moment after the first one does (deferred work): hold one stamped loopback pair open,
    already seen stamping, for the rest of the session."""
    from loadtest.receive_stamps import STAMP_SPACE, enable

    with loopback_pair() as (sender, receiver):
        if not enable(receiver):
            pytest.skip("no kernel receive stamps on this platform")
        buffer = bytearray(8)
        for _ in range(400):
            sender.sendall(b".")
            _, ancillary, _, _ = receiver.recvmsg_into([buffer], STAMP_SPACE)
            if ancillary:
                break
            time.sleep(0.005)
        else:
            raise AssertionError("the kernel never stamped a packet")
        yield
