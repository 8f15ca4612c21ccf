"""The target's arrival stamps: when a client's bytes reached its socket, however late read."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from loadtest import receive_stamps
from loadtest.target.arrival_socket import ArrivalStampedSocket, stamp_arrivals


@pytest.mark.skipif(receive_stamps.SO_TIMESTAMPNS is None, reason="SO_TIMESTAMPNS")
@pytest.mark.parametrize("read", ["recv", "recv_into"])
def test_a_message_that_waited_for_the_loop_is_stamped_when_it_arrived(
    tcp_pair: tuple[socket.socket, socket.socket], read: str, kernel_stamping_on: None
) -> None:
    client, server = tcp_pair
    transport = SimpleNamespace(_sock=server)
    stamped = stamp_arrivals(transport)
    assert isinstance(stamped, ArrivalStampedSocket) and transport._sock is stamped
    sent_at = time.perf_counter()
    client.sendall(b"user_message")
    time.sleep(0.1)  # the target's loop is busy elsewhere: the point of the test
    if read == "recv":
        data = stamped.recv(64)
    else:
        buffer = bytearray(64)
        data = bytes(buffer[: stamped.recv_into(buffer)])
    read_at = time.perf_counter()
    assert data == b"user_message"
    assert stamped.latest_arrival is not None
    assert sent_at <= stamped.latest_arrival < sent_at + 0.03 < read_at - 0.07


def test_everything_but_reads_goes_to_the_socket_itself(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = tcp_pair
    stamped = ArrivalStampedSocket(server)
    assert stamped.fileno() == server.fileno()
    stamped.send(b"pong")
    assert client.recv(8) == b"pong"


def test_a_transport_without_a_plain_socket_is_left_alone() -> None:
    assert stamp_arrivals(SimpleNamespace()) is None
    assert stamp_arrivals(SimpleNamespace(_sock="not a socket")) is None
