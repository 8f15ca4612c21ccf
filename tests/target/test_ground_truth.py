"""--ground-truth: the server's own timings, on the clock the client uses."""

from __future__ import annotations

import json
import time

import pytest

from loadtest import receive_stamps


@pytest.fixture(scope="module")
def run(start_target, tmp_path_factory):
    """A target that served three streams, one of them dropped, then was stopped."""
    path = tmp_path_factory.mktemp("gt") / "truth.jsonl"
    target = start_target(["--profile", "fixed", "--ttfc-ms", "20", "--chunk-gap-ms", "2",
                           "--chunks", "5", "--ground-truth", str(path)])
    client = {}
    with target.connect() as ws:
        conn_id = ws.response.headers["X-Connection-Id"]
        for message_id in ("gt-1", "gt-2"):
            sent = target.send_user_message(ws, message_id)
            frames = target.read_reply(ws)
            client[message_id] = (sent, frames[1][0], frames[-1][0])
    # written within about a second, while the server runs
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and '"gt-2"' not in path.read_text():
        time.sleep(0.05)
    flushed_while_running = '"gt-2"' in path.read_text()
    target.process.set_fault("drop", "1")
    with target.connect() as ws:
        target.send_user_message(ws, "gt-drop")
        target.read_reply(ws)
    assert target.stop() == 0  # SIGTERM flushes the rest
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return records, client, conn_id, flushed_while_running


def test_lines_are_flushed_periodically_while_running(run):
    assert run[3]


def test_one_line_per_stream_with_server_timings_on_the_client_clock(run):
    records, client, conn_id, _ = run
    streams = {r["client_message_id"]: r for r in records if r["event"] == "stream"}
    assert set(streams) == {"gt-1", "gt-2", "gt-drop"}
    for message_id, (sent, first_chunk_seen, complete_seen) in client.items():
        record = streams[message_id]
        assert record["conn"] == conn_id and record["outcome"] == "completed"
        assert record["chunks"] == 5
        assert sent < record["received"] <= record["start_sent"] < record["first_chunk_sent"]
        assert sent < record["arrived"] <= record["received"]  # bytes in the socket, then read
        assert record["first_chunk_sent"] < first_chunk_seen
        assert record["complete_sent"] < complete_seen
        assert 0.020 <= record["first_chunk_sent"] - record["received"] < 0.030
        assert record["message_id"].startswith("msg_")
    dropped = streams["gt-drop"]
    assert dropped["outcome"] == "drop" and dropped["faults"] == ["drop"]
    assert dropped["complete_sent"] is None and dropped["chunks"] == 2


def test_connection_events_record_open_and_close_codes(run):
    records, _, conn_id, _ = run
    opens = [r for r in records if r["event"] == "open"]
    closes = {r["conn"]: r for r in records if r["event"] == "close"}
    assert len(opens) == 2 and {o["conn"] for o in opens} == set(closes)
    assert closes[conn_id]["code"] == 1000 and closes[conn_id]["by"] == "client"
    dropped = next(c for c in closes.values() if c["conn"] != conn_id)
    assert dropped["code"] == 1011 and dropped["by"] == "server"
    assert records[0]["event"] == "server" and records[0]["schema"].startswith("loadtest.target")
    assert not any("token" in json.dumps(r) for r in records)  # no secrets, ever


@pytest.mark.skipif(receive_stamps.SO_TIMESTAMPNS is None, reason="Linux receive stamps")
def test_a_loopback_clients_arrivals_are_the_kernels_stamps(run):
    # aiohttp's real transport was made to read through the stamped socket (not only a stand-in)
    records = run[0]
    assert [r["arrival_clock"] for r in records if r["event"] == "open"] == ["kernel", "kernel"]
