"""The consultation protocol as the guide describes it, over a real socket."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri

FIXED = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "1", "--chunks", "5"]


@pytest.fixture(scope="module")
def target(start_target):
    return start_target(FIXED)


def test_a_user_message_gets_start_chunks_complete_under_one_server_id(target):
    with target.connect() as ws:
        target.send_user_message(ws, "msg_123")
        frames = [f for _, f in target.read_reply(ws)]
    assert [f["type"] for f in frames] == (
        ["ai_message_start"] + ["ai_message_chunk"] * 5 + ["ai_message_complete"])
    ids = {f["message_id"] for f in frames}
    assert len(ids) == 1 and ids != {"msg_123"}  # a new, server-generated id
    for frame in frames:
        datetime.strptime(frame["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        assert "messageId" not in frame
    assert all(isinstance(f["content"], str) and f["content"] for f in frames[1:-1])


def test_message_id_spelled_messageId_is_accepted(target):
    with target.connect() as ws:
        target.send_user_message(ws, "abc", key="messageId")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"


def test_app_level_ping_gets_a_pong_echoing_its_id(target):
    with target.connect() as ws:
        for message_id in ("p-1", 42):
            ws.send(json.dumps({"type": "ping", "message_id": message_id,
                                "timestamp": "2025-01-27T10:00:00Z"}))
            pong = json.loads(ws.recv(timeout=5))
            assert pong["type"] == "pong" and pong["message_id"] == message_id


@pytest.mark.parametrize(("sent", "code"), [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    (json.dumps({"type": "user_message", "message_id": "m"}), "invalid_message"),
    (json.dumps({"type": "dance", "message_id": "m"}), "unknown_type"),
    (b"\x00\x01", "unsupported_frame"),
])
def test_invalid_client_frames_get_an_error_frame_and_the_socket_stays_up(target, sent, code):
    with target.connect() as ws:
        ws.send(sent)
        error = json.loads(ws.recv(timeout=5))
        assert error["type"] == "error" and error["code"] == code and error["content"]
        target.send_user_message(ws, "after")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"


def test_messages_sent_while_busy_are_queued_and_answered_in_order(target):
    with target.connect() as ws:
        target.send_user_message(ws, "first")
        target.send_user_message(ws, "second")
        frames = [f for _, f in target.read_reply(ws)] + [f for _, f in target.read_reply(ws)]
    assert [f["type"] for f in frames].count("ai_message_complete") == 2
    first_id, second_id = frames[0]["message_id"], frames[-1]["message_id"]
    assert first_id != second_id
    # one reply at a time: every frame of the first reply precedes the second's start
    assert [f["message_id"] for f in frames] == [first_id] * 7 + [second_id] * 7


def test_busy_reject_answers_an_error_echoing_the_rejected_id(start_target):
    target = start_target([*FIXED, "--busy", "reject", "--ttfc-ms", "100"])
    with target.connect() as ws:
        target.send_user_message(ws, "first")
        target.send_user_message(ws, "second")
        frames = [f for _, f in target.read_until(ws, lambda f: f["type"] == "ai_message_complete")]
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["code"] == "busy" and errors[0]["message_id"] == "second"
    assert [f["type"] for f in frames if f["type"] != "error"][-1] == "ai_message_complete"


def test_server_can_spell_its_ids_messageId_and_add_templates(start_target):
    target = start_target([*FIXED, "--id-key", "messageId", "--template-share", "1"])
    with target.connect() as ws:
        target.send_user_message(ws, "m1")
        frames = [f for _, f in target.read_until(ws, lambda f: f["type"] == "template_created")]
        ws.send(json.dumps({"type": "ping", "messageId": "p"}))
        assert json.loads(ws.recv(timeout=5))["messageId"] == "p"
    assert all("messageId" in f and "message_id" not in f for f in frames)
    assert frames[-2]["type"] == "ai_message_complete"
    template = frames[-1]
    assert set(template["metadata"]) == {"template_id", "type", "name", "description"}
    assert template["metadata"]["type"] in ("meal", "workout", "wellness")


def _raw_handshake(url: str, headers: dict[str, str]) -> tuple[socket.socket, ClientProtocol]:
    """Open a WebSocket with the Sans-I/O protocol, so pings can go unanswered."""
    protocol = ClientProtocol(parse_uri(url))
    request = protocol.connect()
    for name, value in headers.items():
        request.headers[name] = value
    protocol.send_request(request)
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(b"".join(protocol.data_to_send()))
    return sock, protocol


def test_websocket_pings_keep_answering_clients_and_close_silent_ones(start_target):
    target = start_target([*FIXED, "--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.3"])
    token, consultation = target.session()
    url = f"{target.process.ws_url}?consultation_id={consultation}&token={token}"
    sock, protocol = _raw_handshake(url, {"X-API-Key": target.api_key})
    opened = time.monotonic()
    frames: list[Frame] = []
    with sock:
        while not any(f.opcode is Opcode.CLOSE for f in frames):
            data = sock.recv(65536)
            assert data, "server closed without a close frame"
            protocol.receive_data(data)
            frames += [e for e in protocol.events_received() if isinstance(e, Frame)]
            protocol.data_to_send()  # discard: the automatic pong is never sent
    elapsed = time.monotonic() - opened
    assert frames[0].opcode is Opcode.PING
    close = Close.parse(frames[-1].data)
    assert close.code == 1011 and "keepalive" in close.reason
    assert 0.4 < elapsed < 2.0
    # a client that answers pings (websockets does) outlives several intervals
    with target.connect(ping_interval=None) as ws:
        time.sleep(0.8)
        target.send_user_message(ws, "still-there")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"


def test_enforced_token_expiry_closes_the_session_with_4001(start_target):
    target = start_target([*FIXED, "--enforce-token-expiry"])
    token = target.mint(sub="user_short", ttl_s=1)
    with target.connect(token, "any-consultation") as ws:
        opened = time.monotonic()
        assert target.read_until(ws, lambda f: False, timeout=5) == []
        assert (ws.protocol.close_code, ws.protocol.close_reason) == (4001, "token expired")
        assert time.monotonic() - opened < 3
