"""The admin API: faults on and off during a run, restart, counters."""

from __future__ import annotations

import pytest

FIXED = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "1", "--chunks", "4"]


@pytest.fixture(scope="module")
def target(start_target):
    return start_target(FIXED)


def test_a_fault_switched_on_then_off_mid_run(target):
    with target.connect() as ws:
        target.send_user_message(ws, "before")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"

        assert target.http("PUT", "/admin/faults/drop", {"value": "1"}) == (
            200, {"faults": {"drop": "1"}})
        target.send_user_message(ws, "during")
        frames = target.read_reply(ws)
        assert "ai_message_complete" not in target.types_of(frames)
        assert ws.protocol.close_code == 1011

    assert target.http("DELETE", "/admin/faults/drop") == (200, {"faults": {}})
    assert target.http("GET", "/admin/faults") == (200, {"faults": {}})
    with target.connect() as ws:
        target.send_user_message(ws, "after")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"


@pytest.mark.parametrize(("method", "path", "body", "needle"), [
    ("PUT", "/admin/faults/earthquake", {"value": "1"}, "unknown fault kind"),
    ("PUT", "/admin/faults/drop", {"value": "2"}, "outside 0..1"),
    ("PUT", "/admin/faults/stall", {"value": "0.5"}, "RATE:MS"),
    ("PUT", "/admin/faults/drop", {"rate": "1"}, "value"),
    ("DELETE", "/admin/faults/earthquake", None, "unknown fault kind"),
    ("POST", "/admin/restart", {"refuse_s": -1}, "refuse_s"),
])
def test_bad_admin_requests_are_400_with_a_reason(target, method, path, body, needle):
    status, answer = target.http(method, path, body)
    assert status == 400
    assert needle in answer["error"]


def test_values_are_canonical_and_numbers_are_accepted(target):
    assert target.process.set_fault("stall", "5%:2000") == {"stall": "0.05:2000"}
    assert target.process.set_fault("error", 0.25) == {"error": "0.25", "stall": "0.05:2000"}
    target.process.clear_fault("stall")
    assert target.process.clear_fault("error") == {}


def test_stats_count_connections_and_streams(target):
    before = target.process.stats()
    with target.connect() as first, target.connect() as second:
        during = target.process.stats()
        for n, ws in enumerate((first, second)):
            target.send_user_message(ws, f"s{n}")
            target.read_reply(ws)
    after = target.process.stats()
    assert during["open_connections"] == before["open_connections"] + 2
    assert after["streams_served"] == before["streams_served"] + 2
    assert after["streams_completed"] == before["streams_completed"] + 2
    assert after["chunks_sent"] == before["chunks_sent"] + 8
    assert after["connections_opened"] == before["connections_opened"] + 2
    assert after["processes"] == 1
