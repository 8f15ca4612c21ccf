"""Whole runs against a misbehaving target: refused credentials, a target that dies, a worker
that dies. Each must end in numbers that tell the truth and an exit code CI can act on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, SECRET, TARGET_ENV

FIXED = ["--profile", "fixed", "--ttfc-ms", "20", "--chunk-gap-ms", "5", "--chunks", "10"]


def loadtest(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ},
    )  # fmt: skip


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_rows(run_dir: Path, process: subprocess.Popen[str], size: int = 500) -> None:
    rows = run_dir / "streams.csv"
    deadline = time.monotonic() + 30
    while not rows.exists() or rows.stat().st_size < size:
        assert time.monotonic() < deadline and process.poll() is None, "the run did not start"
        time.sleep(0.1)


class TestRefusedCredentials:
    def test_a_wrong_api_key_stops_every_user_at_once_and_exits_3(self, tmp_path: Path) -> None:
        out = tmp_path / "run"
        with TargetProcess(FIXED, env=TARGET_ENV) as target:
            started = time.monotonic()
            done = loadtest("--host", target.base_url, "-u", "5", "-t", "30s", "--out", str(out),
                            "--api-key", "wrong-key", "--jwt-secret", SECRET,
                            "--", "--consultation-id", "c-1", "--think-time", "0.1")  # fmt: skip
            elapsed = time.monotonic() - started
        assert done.returncode == 3, done.stderr
        assert elapsed < 15, "the run ends when the last user is refused, not at -t"
        refusals = [line for line in done.stderr.splitlines() if "every user stopped" in line]
        assert len(refusals) == 1 and "401 ×5" in refusals[0] and "--api-key" in refusals[0]
        summary = summary_of(out)
        counts = summary["counts"]
        assert counts["users_stopped"] == 5
        # One refresh each, as the guide's client does, then no more handshakes: not load.
        assert counts["connection_failures"] == 10
        assert summary["breakdowns"]["connection_failures"]["by_status"] == {"401": 10}
        assert summary["stopped"]["reason"] == "auth"
        assert summary["slo"]["verdict"] == "fail"

    def test_an_unknown_consultation_stops_on_404_and_names_the_option(
        self, tmp_path: Path
    ) -> None:
        out = tmp_path / "run"
        with TargetProcess([*FIXED, "--strict"], env=TARGET_ENV) as target:
            done = loadtest("--host", target.base_url, "-u", "3", "-t", "30s", "--out", str(out),
                            "--api-key", API_KEY, "--jwt-secret", SECRET,
                            "--", "--consultation-id", "no-such-consultation")  # fmt: skip
        assert done.returncode == 3, done.stderr
        assert "404 ×3" in done.stderr and "--consultation-id" in done.stderr
        counts = summary_of(out)["counts"]
        assert counts["connection_failures"] == 3, "a 404 is never retried"
        assert counts["users_stopped"] == 3


def test_a_target_killed_and_restarted_costs_an_outage_not_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    port = free_port()
    args = ["--port", str(port), *FIXED]
    target = TargetProcess(args, env=TARGET_ENV).start()
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "--host", target.base_url, "-u", "4",
         "-t", "12s", "--out", str(out), "--api-key", API_KEY, "--jwt-secret", SECRET,
         "--", "--think-time", "0.1", "--reconnect-base", "1.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_rows(out, run)
        os.kill(target.pid, signal.SIGKILL)  # no close frames: every connection just dies
        killed_at = time.time()
        target.stop()
        time.sleep(1.0)
        target = TargetProcess(args, env=TARGET_ENV).start()  # back on the same port
        _, stderr = run.communicate(timeout=60)
    finally:
        target.stop()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    summary = summary_of(out)
    counts = summary["counts"]
    assert summary["breakdowns"]["disconnects"]["by_close_code"].get("1006", 0) >= 4
    assert counts["reconnects"] >= 4
    rows = (out / "streams.csv").read_text().splitlines()
    header = rows[0].split(",")
    sent, outcome = header.index("sent_utc"), header.index("outcome")
    after = [row.split(",") for row in rows[1:]]
    restarted_utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(killed_at + 1.0))
    completed_after = [r for r in after if r[outcome] == "completed" and r[sent] > restarted_utc]
    assert completed_after, "streams complete again once the target is back"
    outages = summary["connections"]["outages"]
    assert len(outages) == 1
    assert 1.0 <= outages[0]["seconds"] <= 6.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _locust_workers(loadtest_pid: int) -> list[int]:
    for child in _children(loadtest_pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"locust" in cmdline:
            return _children(child)
    return []


def test_a_worker_killed_mid_run_marks_the_run_incomplete_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = subprocess.Popen(
        [sys.executable, "-m", "loadtest.cli", "run", "--workers", "2", "-u", "4", "-t", "14s",
         "--out", str(out), "--target-args", " ".join(FIXED), "--", "--think-time", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_rows(out, run, size=2000)
        workers = _locust_workers(run.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, stderr
    assert "incomplete" in stderr and "INCOMPLETE" in stdout
    summary = summary_of(out)
    assert len(summary["incomplete"]["workers_lost"]) == 1
    assert summary["incomplete"]["workers_lost"][0].endswith(f"-{workers[0]}")
    assert summary["counts"]["streams_completed"] > 0, "windows shipped before the kill are kept"


REFUSING_LOGIN_SERVER = """
import http.server, sys
class Refuse(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"detail": "invalid credentials"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Refuse)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def test_a_refused_login_stops_the_user_cleanly_and_names_no_email(tmp_path: Path) -> None:
    """Against a plain HTTP server we did not write, which refuses every login with 401."""
    server = subprocess.Popen([sys.executable, "-c", REFUSING_LOGIN_SERVER],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        logins = tmp_path / "logins.csv"
        logins.write_text("ann.example@fitiq.test,pw-one\nbob.example@fitiq.test,pw-two\n")
        out = tmp_path / "run"
        done = loadtest("--host", f"http://127.0.0.1:{port}", "-u", "2", "-t", "30s",
                        "--out", str(out), "--login-file", str(logins))  # fmt: skip
    finally:
        server.kill()
    assert done.returncode == 3, done.stderr
    assert "POST /auth/login 401 ×2" in done.stderr and "--login-file" in done.stderr
    summary = summary_of(out)
    assert summary["breakdowns"]["rest_failures"]["by_call"] == {"POST /auth/login 401": 2}
    log = (out / "locust.log").read_text()
    assert "Traceback" not in log
    for secret in ("ann.example", "bob.example", "pw-one", "pw-two"):
        assert secret not in log and secret not in done.stderr
