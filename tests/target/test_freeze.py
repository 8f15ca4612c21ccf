"""POST /admin/freeze: every reply stalls until the freeze ends, then catches up."""

from __future__ import annotations

import contextlib
import json
import time

from websockets.sync.client import connect

from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, TARGET_ENV, mint


def test_a_freeze_holds_back_replies_until_it_ends() -> None:
    with TargetProcess(["--profile", "fixed", "--ttfc-ms", "10", "--chunks", "3"],
                       env=TARGET_ENV) as target:
        url = f"{target.ws_url}?consultation_id=c1&token={mint()}"
        with connect(url, additional_headers={"X-API-Key": API_KEY}, proxy=None,
                     compression=None) as ws:
            target.freeze(0.5)
            sent = time.monotonic()
            ws.send(json.dumps({"type": "user_message", "content": "hi", "message_id": "m1"}))
            first = json.loads(ws.recv(timeout=5))
            waited = time.monotonic() - sent
            assert first["type"] == "ai_message_start"
            assert 0.4 <= waited <= 1.0
            sent = time.monotonic()
            ws.send(json.dumps({"type": "user_message", "content": "hi", "message_id": "m2"}))
            while json.loads(ws.recv(timeout=5))["type"] != "ai_message_start":
                pass
            assert time.monotonic() - sent < 0.3, "after the freeze, replies are prompt again"


def test_a_partial_restart_drops_only_a_share_of_the_connections() -> None:
    with TargetProcess(["--profile", "fixed", "--seed", "3"], env=TARGET_ENV) as target:
        url = f"{target.ws_url}?consultation_id=c1&token={mint()}"
        with contextlib.ExitStack() as sockets:
            for _ in range(40):
                sockets.enter_context(
                    connect(url, additional_headers={"X-API-Key": API_KEY}, proxy=None,
                            compression=None)
                )
            target.restart(refuse_s=0, share=0.5)
            deadline = time.monotonic() + 3
            while target.stats()["open_connections"] > 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            still_open = target.stats()["open_connections"]
            assert 8 <= still_open <= 32, still_open
