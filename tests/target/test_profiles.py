"""Latency profiles as a client measures them."""

from __future__ import annotations

import itertools
import math
import threading

import pytest


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def measure(target, ws, streams: int,
            label: str = "m") -> tuple[list[float], list[float], list[int]]:
    """Client-side TTFC (ms), inter-chunk gaps (ms) and chunk counts of sequential streams."""
    ttfcs, gaps, counts = [], [], []
    for n in range(streams):
        sent = target.send_user_message(ws, f"{label}{n}")
        frames = target.read_reply(ws)
        chunk_times = [t for t, f in frames if f["type"] == "ai_message_chunk"]
        assert target.types_of(frames)[-1] == "ai_message_complete"
        ttfcs.append((chunk_times[0] - sent) * 1000)
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(chunk_times)]
        counts.append(len(chunk_times))
    return ttfcs, gaps, counts


def test_fixed_profile_is_accurate_as_the_client_sees_it(start_target, kernel_stamping_on):
    target = start_target(["--profile", "fixed", "--ttfc-ms", "50", "--chunk-gap-ms", "10",
                           "--chunks", "20"])
    with target.connect() as ws:
        ttfcs, gaps, counts = measure(target, ws, streams=8)
    assert counts == [20] * 8
    # The client's stamps are the kernel's arrivals, but the target's own lateness on a shared
    # 2-core machine is in them (a clean-clone CI run measured 53.15 ms on 8 streams).
    assert 50 <= percentile(ttfcs, 50) <= 56, sorted(ttfcs)
    assert 10 <= percentile(gaps, 50) <= 12, sorted(gaps)
    assert min(ttfcs) >= 50  # never early
    # due times come from the stream start: the lag stays bounded, no drift along the stream
    assert sum(gaps) / len(gaps) == pytest.approx(10, abs=0.3)
    assert min(gaps) < 10  # catch-ups happen: the schedule is not chained


def test_realistic_profile_varies_around_its_medians_and_is_seeded(start_target,
                                                                   kernel_stamping_on):
    # gaps of 5 ms, not 1: a target or client held a millisecond on a loaded machine sends or
    # reads several chunks at once (one read, one stamp), and 1 ms gaps then read as none
    args = ["--profile", "realistic", "--ttfc-ms", "10", "--chunk-gap-ms", "5", "--chunks", "8",
            "--seed", "7"]
    first, second = start_target(args), start_target(args)
    with first.connect() as ws:
        ttfcs, gaps, counts = measure(first, ws, streams=20)
    with second.connect() as ws:
        _, _, counts_again = measure(second, ws, streams=20)
    assert counts == counts_again  # same seed, same sequence
    assert len(set(counts)) >= 4
    assert max(ttfcs) > 1.8 * min(ttfcs)
    assert 6 <= percentile(ttfcs, 50) <= 18
    assert 2.5 <= percentile(gaps, 50) <= 15


def test_capacity_profile_ttfc_p95_rises_with_concurrency(start_target, kernel_stamping_on):
    target = start_target(["--profile", "capacity", "--set", "slots=2", "--ttfc-ms", "30",
                           "--chunk-gap-ms", "5", "--chunks", "4"])

    def run(clients: int, streams: int) -> list[float]:
        results: list[float] = []
        errors: list[BaseException] = []
        # every client connected before any sends: the queue is measured, not the handshakes
        connected = threading.Barrier(clients, timeout=30)

        def one(index: int) -> None:
            try:
                with target.connect() as ws:
                    connected.wait()
                    results.extend(measure(target, ws, streams, label=f"c{index}-")[0])
            except BaseException as exc:  # surfaced below
                connected.abort()
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        return results

    alone = run(clients=1, streams=6)
    crowded = run(clients=8, streams=4)
    assert percentile(alone, 95) < 45
    assert percentile(crowded, 95) > 2.5 * percentile(alone, 95)
    # the queue is what grows: some streams still find a free slot at once
    assert min(crowded) < 45


def test_capacity_queue_limit_answers_overloaded(start_target):
    target = start_target(["--profile", "capacity", "--set", "slots=1", "--set", "max_queue=1",
                           "--ttfc-ms", "300", "--chunks", "1"])
    with target.connect() as first, target.connect() as second, target.connect() as third:
        for n, ws in enumerate((first, second, third)):
            target.send_user_message(ws, f"q{n}")
            if n == 0:  # make sure the first holds the slot before the others arrive
                assert target.types_of(target.read_until(ws, lambda f: True)) == [
                    "ai_message_start"]
        last = [target.read_reply(ws)[-1][1] for ws in (first, second, third)]
    assert [f["type"] for f in last[:2]] == ["ai_message_complete"] * 2
    assert last[2]["type"] == "error" and last[2]["code"] == "overloaded"
