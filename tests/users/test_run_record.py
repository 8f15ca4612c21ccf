"""``run.json``'s receive clock: what the connections reported, not what was asked for."""

from __future__ import annotations

from loadtest.users.run_record import receive_clock_of_run


def test_the_connections_tally_decides_over_the_expectation() -> None:
    # a target named by a host name that resolves to loopback: expected "read", stamped
    # by the kernel, as each connection decided by its peer's address
    assert receive_clock_of_run("read", {"kernel": 12}) == "kernel"
    assert receive_clock_of_run("kernel", {"read": 3}) == "read"


def test_connections_on_both_clocks_make_a_mixed_run() -> None:
    assert receive_clock_of_run("kernel", {"kernel": 9, "read": 1}) == "mixed"


def test_before_any_connection_the_expectation_stands() -> None:
    assert receive_clock_of_run("kernel", {}) == "kernel"
    assert receive_clock_of_run("read", {"kernel": 0}) == "read"
