"""No secret reaches a file or a console, at any log level (issue 8, "Secrets at DEBUG").

Real runs over 127.0.0.1 with canary secrets: an API key, a JWT secret, a login password and a
static token. Afterwards no canary, no JWT and no ``token=<value>`` may appear in any file of
the run directory (``locust.log`` included) nor in what the run printed. At DEBUG the
``websockets`` client logs every request line and header, so those runs prove the most.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.target.process import TargetProcess
from tests.targets import mint

API_KEY = "CANARYKEY123"
JWT_SECRET = "CANARYSECRET456-0123456789abcdef0123"  # 32+ bytes: no InsecureKeyLengthWarning
PASSWORD = "CANARYPASS789"
CANARIES = ("CANARY", "CANARYKEY", "CANARYSECRET", "CANARYPASS")
LEAKS = re.compile(r"CANARY|eyJ[A-Za-z0-9_-]+\.|[?&]token=(?!<redacted>)")
REPO = Path(__file__).resolve().parents[1]
RUN_S = "3s"
#: Short replies, so that every run completes streams within RUN_S even at DEBUG.
FAST_TARGET = ["--profile", "fixed", "--ttfc-ms", "20", "--chunk-gap-ms", "5", "--chunks", "5"]


def leaks_in(text: str) -> list[str]:
    """Each line that shows a secret (a canary, a JWT, a token parameter's value)."""
    return [line for line in text.splitlines() if LEAKS.search(line)]


def leaks_in_run(run_dir: Path, *printed: str) -> dict[str, list[str]]:
    """The leaking lines of every file under the run directory and of the console."""
    found = {f"console {index}": leaks_in(text) for index, text in enumerate(printed)}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(run_dir))] = leaks_in(path.read_text(errors="replace"))
    return {where: lines for where, lines in found.items() if lines}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**clean, **(env or {})})


def loadtest_run(out: Path, *args: str, level: str = "DEBUG") -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "loadtest.cli", "run", "-u", "2", "-r", "2", "-t", RUN_S,
               "--out", str(out), "--target-args", " ".join(FAST_TARGET), *args,
               "--", "--loglevel", level, "--think-time", "0.2")


@pytest.fixture(scope="module")
def canary_target() -> Iterator[TargetProcess]:
    """A target that accepts the canary key and tokens signed with the canary secret."""
    env = {"LOADTEST_JWT_SECRET": JWT_SECRET, "LOADTEST_API_KEY": API_KEY}
    with TargetProcess(FAST_TARGET, env=env) as target:
        yield target


def assert_the_debug_log_was_written_and_scrubbed(log: str) -> None:
    # Without these the test would pass on a run that never logged a handshake.
    assert "DEBUG/websockets.client: > GET /ws/consultation?" in log
    assert "token=<redacted>" in log and "X-API-Key: <redacted>" in log


class TestLoadtestRun:
    @pytest.mark.parametrize("level", ["INFO", "DEBUG"])
    def test_minted_tokens_the_api_key_and_the_jwt_secret(self, tmp_path: Path,
                                                          level: str) -> None:
        out = tmp_path / "run"
        done = loadtest_run(out, "--api-key", API_KEY, "--jwt-secret", JWT_SECRET, level=level)
        assert done.returncode == 0, done.stderr[-2000:]
        assert leaks_in_run(out, done.stdout, done.stderr) == {}
        if level == "DEBUG":
            assert_the_debug_log_was_written_and_scrubbed((out / "locust.log").read_text())

    def test_a_static_token(self, tmp_path: Path, canary_target: TargetProcess) -> None:
        out = tmp_path / "run"
        token = mint("canary-user", secret=JWT_SECRET)
        done = loadtest_run(out, "--host", canary_target.base_url, "--api-key", API_KEY,
                            "--token", token)
        assert done.returncode == 0, done.stderr[-2000:]
        assert leaks_in_run(out, done.stdout, done.stderr) == {}
        assert_the_debug_log_was_written_and_scrubbed((out / "locust.log").read_text())

    def test_logged_in_tokens_and_the_login_password(self, tmp_path: Path) -> None:
        logins = tmp_path / "logins.csv"
        logins.write_text(f"coach@example.com,{PASSWORD}\n")
        out = tmp_path / "run"
        done = loadtest_run(out, "--api-key", API_KEY, "--login-file", str(logins))
        assert done.returncode == 0, done.stderr[-2000:]
        assert leaks_in_run(out, done.stdout, done.stderr) == {}
        assert_the_debug_log_was_written_and_scrubbed((out / "locust.log").read_text())


def test_plain_locust_scrubs_its_own_log_file(tmp_path: Path,
                                              canary_target: TargetProcess) -> None:
    """No ``loadtest run`` around it to scrub its output: the Locust process does it itself."""
    out, logfile = tmp_path / "run", tmp_path / "locust-debug.log"
    done = run(sys.executable, "-m", "locust", "-f", "scenarios/chat.py", "--headless",
               "-u", "2", "-r", "2", "-t", RUN_S, "--host", canary_target.base_url,
               "--loglevel", "DEBUG", "--logfile", str(logfile), "--loadtest-out", str(out),
               "--think-time", "0.2",
               env={"LOADTEST_API_KEY": API_KEY, "LOADTEST_JWT_SECRET": JWT_SECRET})
    assert done.returncode == 0, done.stderr[-2000:]
    assert leaks_in(logfile.read_text()) == []
    assert leaks_in_run(out, done.stdout, done.stderr) == {}
    assert_the_debug_log_was_written_and_scrubbed(logfile.read_text())


def test_plain_locust_scrubs_what_bypasses_logging(tmp_path: Path,
                                                   canary_target: TargetProcess) -> None:
    """print, warnings, a greenlet's uncaught exception (gevent prints it), a logged one."""
    done = run(sys.executable, "-m", "locust", "-f", "tests/scenarios/leak_secrets.py",
               "--headless", "-u", "1", "-r", "1", "-t", "2s", "--host", canary_target.base_url,
               "--loadtest-out", str(tmp_path / "run"), "--think-time", "0.2",
               env={"LOADTEST_API_KEY": API_KEY, "LOADTEST_JWT_SECRET": JWT_SECRET})
    console = done.stdout + done.stderr
    for evidence in ("printed key: <redacted>", "printed to stderr: <redacted>",
                     "warned key <redacted>", "RuntimeError: greenlet died holding <redacted>",
                     "ConnectionError: refused X-API-Key <redacted>"):
        assert evidence in console
    assert leaks_in(console) == []
