"""Kernel receive stamps: a read's moment is when its bytes arrived, on the perf_counter clock."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from loadtest import receive_stamps
from loadtest.receive_stamps import (
    MAX_AGE_S,
    StampedSocket,
    arrival,
    enable,
    is_loopback,
    run_clock,
    wants_kernel_stamps,
)

linux_only = pytest.mark.skipif(receive_stamps.SO_TIMESTAMPNS is None, reason="SO_TIMESTAMPNS")


def stamp(realtime_ns: int) -> list[tuple[int, int, bytes]]:
    """Ancillary data as recvmsg returns it for a packet the kernel stamped at ``realtime_ns``."""
    timespec = struct.pack("@ll", *divmod(realtime_ns, 1_000_000_000))
    return [(socket.SOL_SOCKET, receive_stamps.SO_TIMESTAMPNS or 35, timespec)]


@linux_only
class TestArrival:
    def test_a_stamp_moves_the_moment_back_by_the_bytes_age(self) -> None:
        read_at, now = time.perf_counter(), time.time_ns()
        moment = arrival(stamp(now - 250_000_000), read_at, now)
        assert moment == pytest.approx(read_at - 0.25, abs=1e-9)

    def test_an_age_of_a_microsecond_is_kept_to_the_nanosecond(self) -> None:
        # time.time()'s float resolves ~0.24 µs today: close packets' gaps read negative
        read_at, now = time.perf_counter(), time.time_ns()
        assert arrival(stamp(now - 1_001), read_at, now) == pytest.approx(
            read_at - 1.001e-6, abs=2e-9
        )

    def test_a_stamp_from_the_future_keeps_the_reads_moment(self) -> None:
        # The realtime clock stepped back between the packet and the read.
        now = time.time_ns()
        assert arrival(stamp(now + 5_000_000_000), 100.0, now) == 100.0

    def test_an_absurd_age_keeps_the_reads_moment(self) -> None:
        now = time.time_ns()
        assert arrival(stamp(now - int((MAX_AGE_S + 1) * 1e9)), 100.0, now) == 100.0

    def test_other_ancillary_data_is_ignored(self) -> None:
        now = time.time_ns()
        level, _, data = stamp(now - 1_000_000_000)[0]
        assert arrival([(level, 1, data)], 100.0, now) == 100.0
        assert (
            arrival([(level, receive_stamps.SO_TIMESTAMPNS or 35, b"\0" * 4)], 100.0, now) == 100.0
        )


@linux_only
@pytest.mark.parametrize("read", ["recv", "recv_into"])
def test_bytes_that_waited_in_the_socket_are_stamped_when_they_arrived(
    tcp_pair: tuple[socket.socket, socket.socket], read: str, kernel_stamping_on: None
) -> None:
    sender, receiver = tcp_pair
    assert enable(receiver)
    stamped = StampedSocket(receiver)
    assert stamped.latest_arrival is None
    sent_at = time.perf_counter()
    sender.sendall(b"first chunk")
    time.sleep(0.1)  # the reading loop is busy elsewhere: the point of the test
    if read == "recv":
        data = stamped.recv(64)
    else:
        buffer = bytearray(64)
        data = bytes(buffer[: stamped.recv_into(buffer)])
    assert data == b"first chunk"
    assert stamped.latest_arrival is not None
    assert sent_at <= stamped.latest_arrival < sent_at + 0.03


def test_a_socket_without_stamps_keeps_the_reads_moment(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = tcp_pair  # never asked for stamps
    stamped = StampedSocket(receiver)
    sender.sendall(b"x")
    time.sleep(0.05)
    before_read = time.perf_counter()
    assert stamped.recv(8) == b"x"
    assert stamped.latest_arrival is not None and stamped.latest_arrival >= before_read


def test_everything_but_reads_goes_to_the_socket_itself(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = tcp_pair
    stamped = StampedSocket(server)
    assert stamped.fileno() == server.fileno()
    stamped.send(b"pong")
    assert client.recv(8) == b"pong"


class TestLoopback:
    def test_loopback_names_and_addresses(self) -> None:
        for host in ("localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]", "::ffff:127.0.0.1"):
            assert is_loopback(host), host

    def test_other_hosts(self) -> None:
        for host in ("example.test", "10.0.0.7", "::ffff:10.0.0.7", "2001:db8::1", ""):
            assert not is_loopback(host), host


class TestRunClock:
    @linux_only
    def test_plain_websockets_on_linux_use_the_kernels_stamp(self) -> None:
        assert run_clock("kernel", "ws://127.0.0.1:8000") == "kernel"
        assert run_clock("kernel", "http://example.test:8000") == "kernel"
        assert run_clock("auto", "ws://localhost:8000") == "kernel"
        assert run_clock("auto", "ws://[::1]:8000") == "kernel"

    def test_auto_reads_a_target_across_a_network_by_the_read(self) -> None:
        # A lost packet would have TCP report the stamp of segments that arrived before it.
        assert run_clock("auto", "ws://example.test:8000") == "read"
        assert run_clock("auto", "ws://10.0.0.7:8000") == "read"
        assert not wants_kernel_stamps("auto", "192.168.1.2")
        assert wants_kernel_stamps("auto", "127.0.0.2")
        assert wants_kernel_stamps("kernel", "192.168.1.2")
        assert not wants_kernel_stamps("read", "127.0.0.1")

    def test_tls_and_the_read_option_use_the_read(self) -> None:
        assert run_clock("kernel", "wss://127.0.0.1:8443") == "read"
        assert run_clock("kernel", "HTTPS://127.0.0.1:8443") == "read"
        assert run_clock("read", "ws://127.0.0.1:8000") == "read"

    def test_the_expectation_looks_nothing_up(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # a name is judged by its spelling only; the connections, which decide by the peer's
        # address, report what they did (run.json's tally, tests/users/test_run_record.py)
        def resolve(*_: object, **__: object) -> list[tuple[object, ...]]:
            raise AssertionError("run_clock must not resolve names")

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        assert run_clock("auto", "ws://myhost:8000") == "read"


@linux_only
def test_a_later_read_is_never_stamped_before_an_earlier_one() -> None:
    # the second read's stamp converts to an earlier moment (the conversion's jitter, here
    # exaggerated): TCP delivered its bytes after the first read's, so it keeps that moment
    now = time.time_ns()
    reads = iter([(b"a", stamp(now - 1_000_000)), (b"b", stamp(now - 5_000_000))])

    class FakeSocket:
        def recvmsg(self, size: int, ancsize: int, flags: int = 0) -> tuple[object, ...]:
            data, ancillary = next(reads)
            return data, ancillary, 0, None

    stamped = StampedSocket(FakeSocket())  # type: ignore[arg-type]
    stamped.recv(8)
    first = stamped.latest_arrival
    stamped.recv(8)
    assert first is not None and stamped.latest_arrival == first
