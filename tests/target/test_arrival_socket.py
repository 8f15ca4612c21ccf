"""The target's arrival stamps: asyncio's transport is made to read through a stamped socket."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from loadtest import receive_stamps
from loadtest.receive_stamps import StampedSocket
from loadtest.target.arrival_socket import stamp_arrivals


@pytest.mark.skipif(receive_stamps.SO_TIMESTAMPNS is None, reason="SO_TIMESTAMPNS")
def test_a_loopback_transport_reads_through_a_stamped_socket_once(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    _, server = tcp_pair
    transport = SimpleNamespace(_sock=server)
    stamped = stamp_arrivals(transport)
    assert isinstance(stamped, StampedSocket) and transport._sock is stamped
    assert server.getsockopt(socket.SOL_SOCKET, receive_stamps.SO_TIMESTAMPNS) == 1
    assert stamp_arrivals(transport) is stamped  # not wrapped twice


def test_a_transport_without_a_plain_socket_is_left_alone() -> None:
    assert stamp_arrivals(SimpleNamespace()) is None
    assert stamp_arrivals(SimpleNamespace(_sock="not a socket")) is None
