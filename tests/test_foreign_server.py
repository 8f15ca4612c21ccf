"""The whole tool against a server we did not write, checked against that server's own clock:
camelCase ids, and one message in ten lost (no reply at all). A lost reply costs exactly one
failed stream; every other stream completes, timed as the server timed it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from loadtest import receive_stamps


def test_lost_replies_cost_one_failed_stream_each_and_timings_match_the_servers_clock(
    tmp_path: Path,
) -> None:
    report = tmp_path / "server.json"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "foreign_server.py"),
                               str(report)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        out = tmp_path / "run"
        done = subprocess.run(
            [sys.executable, "-m", "loadtest.cli", "run", "--host", f"ws://127.0.0.1:{port}",
             "-u", "5", "-t", "8s", "--out", str(out),
             "--", "--consultation-id", "c-foreign", "--id-key", "messageId",
             "--stream-timeout", "0.3", "--think-time", "0.02"],
            capture_output=True, text=True, timeout=90,
            env={k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")},
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stderr
    truth = json.loads(report.read_text())
    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    assert truth["lost"] >= 20, "enough lost replies to matter"
    # Each lost message is one timed-out stream, unless it was still waiting when -t came
    # (then cancelled: at most one per user).
    assert truth["lost"] - 5 <= counts["streams_failed"] <= truth["lost"]
    assert summary["breakdowns"]["streams_failed"]["by_error_kind"] == {
        "timeout": counts["streams_failed"]
    }
    assert truth["answered"] - 5 <= counts["streams_completed"] <= truth["answered"]
    assert counts["protocol_violations"] == 0
    server_ttfc = sorted(truth["ttfc_ms"])[len(truth["ttfc_ms"]) // 2]
    client_ttfc = summary["metrics"]["ttfc_ms"]["p50"]
    assert 0 <= client_ttfc - server_ttfc < 3, (client_ttfc, server_ttfc)
    run = json.loads((out / "run.json").read_text())
    expected_clock = "read" if receive_stamps.SO_TIMESTAMPNS is None else "kernel"
    assert run["receive_clock"] == expected_clock  # loopback: the kernel's arrival stamps
