"""The rate_limit fault: more than N user messages in S seconds on one connection are refused."""

from __future__ import annotations

import json
import time
from collections import deque

import pytest

from loadtest.target.faults import RATE_LIMITED, admit_message, parse_fault_option

FIXED = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "2", "--chunks", "3"]


@pytest.mark.parametrize(
    ("spec", "limit", "window_s", "close_code", "text"),
    [
        ("rate_limit=5/1", 5, 1.0, 0, "5/1"),
        ("rate_limit=10/2.5:1008", 10, 2.5, 1008, "10/2.5:1008"),
        ("rate_limit=1/60:4029", 1, 60.0, 4029, "1/60:4029"),
    ],
)
def test_rate_limit_spec_parses_and_round_trips(spec, limit, window_s, close_code, text):
    fault = parse_fault_option(spec)
    assert (fault.limit, fault.window_s, fault.close_code) == (limit, window_s, close_code)
    assert fault.text == text
    assert parse_fault_option(f"rate_limit={fault.text}") == fault
    assert fault.rate == 0.0  # never rolled per stream: not a RATE fault


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("rate_limit=5", "N/S"),
        ("rate_limit=0/1", "N must be >= 1"),
        ("rate_limit=x/1", "not a whole number"),
        ("rate_limit=5/0", "S must be > 0"),
        ("rate_limit=5/1:1006", "close code a server may send"),
        ("rate_limit=5/1:abc", "not a close code"),
        ("rate_limit=5/1:1008:2", "N/S or N/S:CODE"),
    ],
)
def test_bad_rate_limit_specs_say_what_is_wrong_in_one_line(spec, says):
    with pytest.raises(ValueError) as info:
        parse_fault_option(spec)
    assert says in str(info.value) and "rate_limit=N/S[:CODE]" in str(info.value)
    assert "\n" not in str(info.value)


def test_the_window_slides_and_refused_messages_do_not_fill_it():
    recent: deque[float] = deque()
    assert [admit_message(recent, t, 2, 1.0) for t in (0.0, 0.1, 0.2, 0.9)] == [
        True, True, False, False,
    ]  # fmt: skip
    assert admit_message(recent, 1.0, 2, 1.0)  # 0.0 has left the window (0.0, 1.0]
    assert not admit_message(recent, 1.05, 2, 1.0)  # 0.1 and 1.0 are still in it
    assert admit_message(recent, 1.1, 2, 1.0)
    assert list(recent) == [1.0, 1.1]


def test_messages_over_the_limit_get_a_rate_limited_error_frame(start_target, tmp_path):
    truth = tmp_path / "truth.jsonl"
    target = start_target([*FIXED, "--fault", "rate_limit=3/30", "--ground-truth", str(truth)])
    with target.connect() as ws:
        for n in range(5):
            target.send_user_message(ws, f"m{n}")
        frames = target.read_until(
            ws, lambda f: f.get("type") == "error" and f.get("message_id") == "m4"
        )
        errors = [f for _, f in frames if f["type"] == "error"]
        # The connection stays open: a refused client may go on after the window.
        target.send_user_message(ws, "m5")
        assert target.read_reply(ws)[-1][1]["type"] == "error"
    assert [e["message_id"] for e in errors] == ["m3", "m4"]
    assert {e["code"] for e in errors} == {RATE_LIMITED}
    assert errors[0]["content"] == "rate limit exceeded: more than 3 messages in 30 s"
    assert set(errors[0]) == {"type", "content", "message_id", "code", "timestamp"}
    stats = target.process.stats()
    assert stats["faults_injected"]["rate_limit"] == 3
    assert stats["user_messages_received"] == 6 and stats["error_frames_sent"] == 3
    deadline = time.monotonic() + 5
    while truth.read_text().count('"event":"rate_limited"') < 3:
        assert time.monotonic() < deadline, "refusals never reached the ground truth"
        time.sleep(0.05)
    refused = [json.loads(line) for line in truth.read_text().splitlines()]
    refused = [r for r in refused if r["event"] == "rate_limited"]
    assert [r["client_message_id"] for r in refused] == ["m3", "m4", "m5"]
    assert refused[0]["limit"] == "3/30" and refused[0]["close_code"] is None


def test_with_a_close_code_the_refusal_also_closes_the_connection(start_target):
    target = start_target(FIXED)
    target.process.set_fault("rate_limit", "1/30:1008")
    with target.connect() as ws:
        target.send_user_message(ws, "first")
        assert target.read_reply(ws)[-1][1]["type"] == "ai_message_complete"
        target.send_user_message(ws, "second")
        frames = target.read_until(ws, lambda f: False, timeout=5)
        ws.recv_events_thread.join(5)
        assert [f["type"] for _, f in frames] == ["error"]
        assert frames[0][1]["code"] == RATE_LIMITED
        assert (ws.protocol.close_code, ws.protocol.close_reason) == (1008, "rate limit exceeded")
    # Another connection has a window of its own.
    with target.connect() as ws:
        target.send_user_message(ws, "fresh")
        assert target.read_reply(ws)[-1][1]["type"] == "ai_message_complete"
    target.process.clear_fault("rate_limit")
