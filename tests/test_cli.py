"""The `loadtest` command as a user meets it: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest import receive_stamps
from loadtest.target.process import TargetProcess
from tests.targets import TARGET_ENV

METRIC_FIELDS = {"count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max"}
CONTRACT_METRICS = {"connect_ms", "ttfs_ms", "ttfc_ms", "stream_ms", "inter_chunk_ms"}
CONTRACT_COUNTS = {
    "streams_started", "streams_completed", "streams_failed", "streams_cancelled",
    "connections_opened", "connection_failures", "disconnects", "reconnects",
    "reconnect_giveups", "protocol_violations", "error_frames", "templates_created",
    "pings_sent", "pongs_received", "pongs_missed", "dropped_arrivals",
}  # fmt: skip


def loadtest(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    import os

    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def rows_of(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "streams.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def fixed_target() -> Iterator[TargetProcess]:
    args = ["--profile", "fixed", "--ttfc-ms", "50", "--chunk-gap-ms", "10", "--chunks", "10"]
    with TargetProcess(args, env=TARGET_ENV) as running:
        yield running


class TestRunAgainstTheEmbeddedTarget:
    def test_a_short_run_writes_the_contract_run_directory(self, tmp_path: Path) -> None:
        out = tmp_path / "run"
        done = loadtest("run", "-u", "20", "-r", "20", "-t", "4s", "--out", str(out),
                        "--", "--think-time", "0.1-0.3")
        assert done.returncode == 0, done.stderr
        assert "ttfc_ms" in done.stdout and "p99.9" in done.stdout
        summary = summary_of(out)
        assert summary["schema"] == "loadtest.summary/1"
        assert summary["duration_s"] > 0
        assert summary["metrics"].keys() >= CONTRACT_METRICS
        for key in CONTRACT_METRICS:
            assert set(summary["metrics"][key]) == METRIC_FIELDS
            assert summary["metrics_all"][key]["count"] > 0, key
            # Every user connects during the ramp, so the steady state holds no connect.
            assert (summary["metrics"][key]["count"] > 0) == (key != "connect_ms"), key
        assert summary["counts"].keys() >= CONTRACT_COUNTS
        counts = summary["counts"]
        assert counts["streams_failed"] == 0
        assert counts["streams_completed"] > 0
        assert counts["streams_started"] == (
            counts["streams_completed"] + counts["streams_failed"] + counts["streams_cancelled"]
        )
        assert counts["connections_opened"] == 20
        assert summary["generator"]["saturated"] in (True, False)
        assert summary["slo"]["passed"] is True and summary["slo"]["verdict"] == "pass"
        assert [check["check"] for check in summary["slo"]["checks"]] == ["streams_completed > 0"]
        assert summary["interrupted"] is False and summary["incomplete"] is None
        assert len(rows_of(out)) == counts["streams_started"]
        run = json.loads((out / "run.json").read_text())
        assert run["target"].startswith("http://127.0.0.1:")
        assert run["ended_utc"] is not None
        clock = "kernel" if receive_stamps.SO_TIMESTAMPNS else "read"
        assert run["receive_clock"] == clock
        # what the connections themselves reported, not only what the options asked for
        assert run["receive_clock_connections"] == {clock: 20}
        assert summary["breakdowns"]["connections_opened"] == {"by_receive_clock": {clock: 20}}

    def test_the_steady_state_starts_after_the_ramps_slow_connects(self, tmp_path: Path) -> None:
        out = tmp_path / "run"
        done = loadtest("run", "-u", "4", "-r", "8", "-t", "6s", "--out", str(out),
                        "--target-args", "--profile fixed --ttfc-ms 20 --chunks 3 "
                        "--chunk-gap-ms 5 --fault slow_handshake=1:1500",
                        "--", "--think-time", "0.1")
        assert done.returncode == 0, done.stderr
        load = json.loads((out / "run.json").read_text())["load"]
        assert load["ramp_connected_s"] >= load["spawning_complete_s"] + 1.4
        summary = summary_of(out)
        assert summary["steady_state"]["from_s"] >= load["ramp_connected_s"]
        assert summary["metrics_all"]["connect_ms"]["count"] == 4
        assert summary["metrics"]["connect_ms"]["count"] == 0
        assert summary["metrics"]["ttfc_ms"]["count"] > 0

    def test_secrets_never_reach_the_run_directory(self, tmp_path: Path) -> None:
        out = tmp_path / "run"
        secret, key = "s3cret-jwt-signing-key-0123456789abcdef", "api-key-9f8e7d6c"
        done = loadtest("run", "-u", "2", "-t", "2s", "--out", str(out),
                        "--jwt-secret", secret, "--api-key", key,
                        "--target-args", "--profile fixed", "--", "--think-time", "0.1")
        assert done.returncode == 0, done.stderr
        for path in out.iterdir():
            text = path.read_text(errors="replace")
            assert secret not in text and key not in text, path.name
        assert summary_of(out)["counts"]["connections_opened"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["-u", "0"],
        ["-t", "soon"],
        ["--host", "ftp://127.0.0.1:1"],
        ["no-such-scenario"],
        ["--token", "a", "--jwt-secret", "b"],
        ["-t", "0m"],
        ["--arrival-rate", "5", "-u", "30"],
        ["--target-args", "--jwt-secret abc"],
        ["--target-args", "--fault bogus=1"],
        ["chat", "--arrival-rate", "5", "-t", "2s"],
        ["-t", "2s", "--", "--unknown-flag"],
        ["-t", "2s", "--", "--stream-timeout", "-1"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str]) -> None:
    done = loadtest("run", *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error: " in done.stderr, "says what is wrong"


def test_distributed_and_single_process_runs_agree(
    fixed_target: TargetProcess, tmp_path: Path
) -> None:
    # Random think times keep users out of lockstep: synchronised chunk bursts on one
    # process's connections would measure the generator's queueing, not the merge.
    common = ["-u", "6", "-r", "6", "-t", "6s", "--host", fixed_target.base_url,
              "--", "--think-time", "0.05-0.25"]
    single, split = tmp_path / "single", tmp_path / "split"
    done = loadtest("run", "--out", str(single), *common, env=TARGET_ENV)
    assert done.returncode == 0, done.stderr
    done = loadtest("run", "--workers", "2", "--out", str(split), *common, env=TARGET_ENV)
    assert done.returncode == 0, done.stderr
    one, two = summary_of(single), summary_of(split)
    assert abs(one["metrics"]["ttfc_ms"]["p50"] - two["metrics"]["ttfc_ms"]["p50"]) <= 1.0
    for summary, run_dir in ((one, single), (two, split)):
        counts = summary["counts"]
        assert counts["streams_failed"] == 0
        assert counts["connections_opened"] == 6
        rows = rows_of(run_dir)
        assert len(rows) == counts["streams_started"]
        completed = sum(row["outcome"] == "completed" for row in rows)
        # Counts cover the whole run, and so does metrics_all (metrics: the steady state).
        whole_run = summary["metrics_all"]["ttfc_ms"]["count"]
        assert completed == counts["streams_completed"] == whole_run
    workers = {row["worker"] for row in rows_of(split)}
    assert len(workers) == 2, "both workers' rows reached the master"


def test_a_saturated_generator_is_flagged(tmp_path: Path) -> None:
    out = tmp_path / "run"
    scenario = Path(__file__).parent / "scenarios" / "burn_cpu.py"
    done = loadtest("run", str(scenario), "-u", "2", "-t", "3s", "--out", str(out),
                    "--target-args", "--profile fixed", "--", "--think-time", "0.1")
    assert done.returncode == 0, done.stderr
    generator = summary_of(out)["generator"]
    assert generator["saturated"] is True
    assert generator["saturated_windows"]
    assert "saturated" in done.stderr, "the CLI warns"


def test_a_healthy_short_run_is_not_flagged(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = loadtest("run", "-u", "2", "-t", "3s", "--out", str(out),
                    "--target-args", "--profile fixed", "--", "--think-time", "0.1")
    assert done.returncode == 0, done.stderr
    generator = summary_of(out)["generator"]
    notes = [line for line in (out / "intervals.counts.jsonl").read_text().splitlines()
             if '"notes":[]' not in line]
    assert generator["saturated"] is False, notes
    # Locust's stop() once blocked the loop 50-60 ms (inspect.stack() mapping every module)
    # while the last streams were in flight: each showed one 50 ms gap between chunks 11 ms
    # apart. The streams the stop cuts off must read on time to the end.
    with (out / "streams.csv").open(newline="") as streams:
        cut = [row for row in csv.DictReader(streams) if row["outcome"] == "cancelled"]
    assert all(float(row["max_gap_ms"]) < 30 for row in cut if row["max_gap_ms"]), cut


def test_a_token_source_typed_on_the_command_line_beats_a_stale_environment(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("not-a-valid-token\n")
    done = loadtest("run", "-u", "1", "-t", "2s", "--out", str(tmp_path / "run"),
                    "--tokens-file", str(tokens), env={"LOADTEST_JWT_SECRET": "stale"})
    assert "choose one of" not in done.stderr
    # The file's token was used (and refused), not the stale secret: the user stops, exit 3.
    assert done.returncode == 3, done.stderr
    assert "refused them (POST /consultations 401" in done.stderr


def test_run_json_redacts_secrets_but_not_lookalikes() -> None:
    from loadtest.users.run_record import redact

    clean = redact({"id_key": "messageId", "api_key": "k", "jwt_secret": "s",
                    "tokens_file": "/t", "host": "wss://ann:pw@example.test/",
                    "web_auth": "admin:pw"})
    assert clean == {"id_key": "messageId", "api_key": "<redacted>", "jwt_secret": "<redacted>",
                     "tokens_file": "/t", "host": "wss://ann:***@example.test/",
                     "web_auth": "<redacted>"}
