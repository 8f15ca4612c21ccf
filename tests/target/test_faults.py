"""Every fault kind, switched on through the admin API (and one from the command line)."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator

import pytest

CHUNKS = 6  # faults strike at the middle chunk, index 3
FIXED = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "2", "--chunks", str(CHUNKS)]


@pytest.fixture(scope="module")
def target(start_target):
    return start_target(FIXED)


@contextlib.contextmanager
def fault(target, kind: str, value: str) -> Iterator[None]:
    assert kind in target.process.set_fault(kind, value)
    try:
        yield
    finally:
        assert kind not in target.process.clear_fault(kind)


def reply_of(target, **connect_args):
    """Connect, send one message, return (frames, close code, close reason, close frame seen)."""
    with target.connect(**connect_args) as ws:
        target.send_user_message(ws, "u1")
        frames = target.read_reply(ws)
        if not frames or target.types_of(frames)[-1] not in ("ai_message_complete", "error"):
            ws.recv_events_thread.join(5)
        protocol = ws.protocol
        return ([f for _, f in frames], protocol.close_code, protocol.close_reason,
                protocol.close_rcvd is not None)


def test_drop_closes_mid_stream_with_1011(target):
    with fault(target, "drop", "1"):
        frames, code, _, close_frame = reply_of(target)
    assert [f["type"] for f in frames] == ["ai_message_start"] + ["ai_message_chunk"] * 3
    assert code == 1011 and close_frame


def test_reset_aborts_tcp_without_a_close_frame(target):
    with fault(target, "reset", "1"):
        frames, code, _, close_frame = reply_of(target)
    assert [f["type"] for f in frames] == ["ai_message_start"] + ["ai_message_chunk"] * 3
    assert not close_frame and code == 1006


def test_expire_token_closes_with_4001_token_expired(target):
    with fault(target, "expire_token", "100%"):
        frames, code, reason, _ = reply_of(target)
    assert len(frames) == 4
    assert (code, reason) == (4001, "token expired")


def test_error_replaces_the_reply_with_an_error_frame(target):
    with fault(target, "error", "1"):
        frames, _, _, _ = reply_of(target)
    assert len(frames) == 1
    assert frames[0]["type"] == "error" and frames[0]["message_id"] == "u1"
    assert frames[0]["code"] == "injected_error"


def test_lose_answers_a_message_with_nothing_and_the_next_one_as_usual(target):
    with target.connect() as ws:
        with fault(target, "lose", "1"):
            target.send_user_message(ws, "lost")
            assert target.read_reply(ws, timeout=0.3) == []  # not a start, not a chunk
        target.send_user_message(ws, "after")
        frames = target.read_reply(ws)
    assert target.types_of(frames)[0] == "ai_message_start"
    assert target.types_of(frames)[-1] == "ai_message_complete"


def counting_completes(expected: int):
    """A ``read_until`` stop: true at the ``expected``-th ``ai_message_complete``."""
    seen = 0

    def stop(frame) -> bool:
        nonlocal seen
        seen += frame.get("type") == "ai_message_complete"
        return seen >= expected

    return stop


def test_lost_messages_are_seeded_and_in_the_ground_truth(start_target, tmp_path):
    messages = 20

    def lost_ids(path) -> list[str]:
        target = start_target([*FIXED, "--fault", "lose=0.3", "--seed", "11",
                               "--ground-truth", str(path)])
        with target.connect() as ws:
            for n in range(messages):
                target.send_user_message(ws, f"m{n}")
            # The ground truth is flushed every second: its 20th stream line is the event.
            deadline = time.monotonic() + 5
            while path.read_text().count('"event":"stream"') < messages:
                assert time.monotonic() < deadline, "streams never reached the ground truth"
                time.sleep(0.05)
            streams = [json.loads(line) for line in path.read_text().splitlines()]
            streams = [r for r in streams if r["event"] == "stream"]
            lost = [r for r in streams if r["outcome"] == "lost"]
            answered = target.types_of(target.read_until(
                ws, counting_completes(messages - len(lost)))).count("ai_message_complete")
        assert all(r["faults"] == ["lose"] and r["message_id"] is None for r in lost)
        assert answered == messages - len(lost)  # every other message was answered
        return [r["client_message_id"] for r in lost]

    first = lost_ids(tmp_path / "a.jsonl")
    assert 1 <= len(first) <= 15
    assert lost_ids(tmp_path / "b.jsonl") == first  # same seed, same messages lost


def test_stall_pauses_the_middle_of_the_stream(target, kernel_stamping_on):
    with fault(target, "stall", "1:150"), target.connect() as ws:
        target.send_user_message(ws, "s")
        frames = target.read_reply(ws)
    chunk_times = [t for t, f in frames if f["type"] == "ai_message_chunk"]
    gaps_ms = [(b - a) * 1000 for a, b in itertools.pairwise(chunk_times)]
    assert len(chunk_times) == CHUNKS and frames[-1][1]["type"] == "ai_message_complete"
    # between chunk 2 and chunk 3: the stall plus the 2 ms gap, however late chunk 2 left;
    # arrival stamps (kernel) differ from the send moments by microseconds on loopback
    assert gaps_ms[2] >= 152 - 0.1
    assert max(gaps_ms[:2] + gaps_ms[3:]) < 100


def test_malformed_binary_and_oversized_frames(target):
    with fault(target, "malformed", "1"):
        frames, _, _, _ = reply_of(target)
    assert isinstance(frames[4], str) and frames[4].startswith('{"type":"ai_message_chunk"')
    assert frames[-1]["type"] == "ai_message_complete"

    with fault(target, "binary", "1"):
        frames, _, _, _ = reply_of(target)
    assert isinstance(frames[4], bytes)
    assert json.loads(frames[4])["type"] == "ai_message_chunk"
    assert frames[-1]["type"] == "ai_message_complete"

    with fault(target, "oversized", "1:2000000"):
        frames, _, _, _ = reply_of(target, max_size=None)
        with target.connect() as ws:  # a client with websockets' default 1 MiB limit
            target.send_user_message(ws, "big")
            target.read_reply(ws)
            assert ws.protocol.close_sent.code == 1009  # it refused the message as too big
    assert len(frames[4]["content"]) == 2_000_000
    assert frames[-1]["type"] == "ai_message_complete"


def test_out_of_order_frames(target):
    with fault(target, "chunk_before_start", "1"):
        frames, _, _, _ = reply_of(target)
    assert [f["type"] for f in frames[:3]] == [
        "ai_message_chunk", "ai_message_start", "ai_message_chunk"]
    with fault(target, "duplicate_complete", "1"), target.connect() as ws:
        target.send_user_message(ws, "d")
        frames = target.read_until(ws, lambda f: False, timeout=0.5)
    assert target.types_of(frames)[-2:] == ["ai_message_complete", "ai_message_complete"]


def test_swallow_pong(target):
    ping = json.dumps({"type": "ping", "message_id": "p"})
    with target.connect() as ws:
        with fault(target, "swallow_pong", "1"):
            ws.send(ping)
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)
        ws.send(ping)
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"


def test_refuse_and_slow_handshakes(target):
    with fault(target, "refuse", "1"):
        assert target.handshake_status() == 503
    with fault(target, "slow_handshake", "1:250"):
        token, consultation = target.session()
        started = time.monotonic()
        with target.connect(token, consultation):
            assert time.monotonic() - started >= 0.25


def test_faults_are_counted(target):
    injected = target.process.stats()["faults_injected"]
    for kind in ("drop", "reset", "stall", "error", "lose", "refuse", "slow_handshake",
                 "swallow_pong", "malformed", "binary", "oversized", "chunk_before_start",
                 "duplicate_complete", "expire_token"):
        assert injected[kind] >= 1, kind


def test_partial_rates_fault_some_streams_only(start_target):
    target = start_target([*FIXED, "--fault", "error=0.5", "--seed", "3"])
    assert target.process.faults() == {"error": "0.5"}
    with target.connect() as ws:
        kinds = []
        for n in range(40):
            target.send_user_message(ws, f"m{n}")
            kinds.append(target.types_of(target.read_reply(ws))[-1])
    assert 8 <= kinds.count("error") <= 32
    assert kinds.count("ai_message_complete") == 40 - kinds.count("error")


def test_restart_drops_everyone_with_1012_then_refuses_with_503_for_a_while(start_target):
    target = start_target(FIXED)
    with target.connect() as ws:
        target.process.restart(0.6)
        target.read_until(ws, lambda f: False, timeout=5)
        assert ws.protocol.close_code == 1012
    assert target.handshake_status(token=target.mint(), consultation_id="any") == 503
    assert target.http("GET", "/health")[0] == 503
    assert target.process.stats()["restarts"] == 1  # the admin API stays up
    time.sleep(0.7)
    with target.connect() as ws:
        target.send_user_message(ws, "back")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"


def test_scheduled_restart(start_target):
    target = start_target([*FIXED, "--fault", "restart=0.5:0.1"])
    with target.connect() as ws:
        started = time.monotonic()
        target.read_until(ws, lambda f: False, timeout=3)
        assert ws.protocol.close_code == 1012
        assert 0.4 <= time.monotonic() - started <= 1.5
