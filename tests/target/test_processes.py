"""--processes 2: one port, SO_REUSEPORT, and one control plane for all processes."""

from __future__ import annotations

import contextlib
import json

import pytest

FIXED = ["--profile", "fixed", "--ttfc-ms", "5", "--chunk-gap-ms", "1", "--chunks", "3"]
CONNECTIONS = 16  # all on one process by chance: 2 * 0.5**16, about 1 in 33,000


@pytest.fixture(scope="module")
def ground_truth_file(tmp_path_factory):
    return tmp_path_factory.mktemp("gt") / "truth.jsonl"


@pytest.fixture(scope="module")
def target(start_target, ground_truth_file):
    return start_target([*FIXED, "--processes", "2", "--strict",
                         "--ground-truth", str(ground_truth_file)])


def outcomes(target, sockets) -> list[str]:
    result = []
    for n, ws in enumerate(sockets):
        target.send_user_message(ws, f"m{n}")
        result.append(target.types_of(target.read_reply(ws))[-1:] or ["closed"])
    return [kinds[0] for kinds in result]


def test_all_processes_serve_and_share_stats_and_faults(target):
    token, consultation = target.session()
    with contextlib.ExitStack() as stack:
        # strict mode: a consultation created through one process is known to all
        sockets = [stack.enter_context(target.connect(token, consultation))
                   for _ in range(CONNECTIONS)]
        stats = target.process.stats()
        assert stats["processes"] == 2
        assert stats["open_connections"] == CONNECTIONS
        assert all(p["open_connections"] > 0 for p in stats["per_process"])
        assert outcomes(target, sockets) == ["ai_message_complete"] * CONNECTIONS

        target.process.set_fault("error", "1")  # reaches the process that did not answer too
        assert outcomes(target, sockets) == ["error"] * CONNECTIONS
        target.process.clear_fault("error")
        assert outcomes(target, sockets) == ["ai_message_complete"] * CONNECTIONS

        target.process.restart(0)
        for ws in sockets:
            target.read_until(ws, lambda f: False, timeout=5)
            assert ws.protocol.close_code == 1012
    assert target.process.stats()["streams_completed"] == 2 * CONNECTIONS


def test_both_processes_append_to_one_ground_truth_file(target, ground_truth_file):
    assert target.stop() == 0  # SIGTERM: children stop, flush, parent exits 0
    records = [json.loads(line) for line in ground_truth_file.read_text().splitlines()]
    assert {r["process"] for r in records if r["event"] == "server"} == {0, 1}
    assert {r["process"] for r in records if r["event"] == "open"} == {0, 1}
    streams = [r for r in records if r["event"] == "stream"]
    assert len(streams) == 3 * CONNECTIONS
