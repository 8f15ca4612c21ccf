"""The command line: option errors, shutdown, TargetProcess failures."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from loadtest.errors import UsageError
from loadtest.target.command import serve
from loadtest.target.process import TargetProcess


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadtest.target", *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_serve_is_a_click_command_named_serve():
    assert isinstance(serve, click.Command) and serve.name == "serve"


@pytest.mark.parametrize(("args", "needle"), [
    (["--fault", "earthquake=1"], "unknown fault kind"),
    (["--fault", "drop=1.5"], "outside 0..1"),
    (["--fault", "stall=0.5"], "stall=RATE:MS"),
    (["--fault", "drop"], "KIND=VALUE"),
    (["--profile", "fixed", "--set", "slots=2"], "no parameter 'slots'"),
    (["--set", "chunks"], "KEY=VALUE"),
])
def test_bad_options_exit_2_with_one_clear_line(args, needle):
    result = run_command(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and needle in error_lines[0], result.stderr
    assert result.stdout == ""


def test_help_documents_the_fault_syntax():
    result = run_command("--help")
    assert result.returncode == 0
    for text in ("stall=RATE:MS", "restart=EVERY_S:REFUSE_S", "LOADTEST_API_KEY", "4001"):
        assert text in result.stdout


def test_target_process_reports_bad_options_as_a_usage_error():
    with pytest.raises(UsageError, match=r"^target: .*unknown fault kind 'earthquake'"):
        TargetProcess(["--fault", "earthquake=1"]).start()


def test_a_busy_port_is_exit_1_with_one_line(start_target):
    target = start_target()
    result = run_command("--port", str(target.process.port))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_closes_sockets_with_1001_and_exits_0(start_target):
    target = start_target(["--profile", "fixed", "--ttfc-ms", "5000"])
    with target.connect() as ws:
        target.send_user_message(ws, "pending")
        assert target.types_of(target.read_until(ws, lambda f: True)) == ["ai_message_start"]
        assert target.stop() == 0
        assert target.read_reply(ws) == []
        assert ws.protocol.close_code == 1001


def test_addresses(start_target):
    target = start_target()
    process = target.process
    assert process.base_url == f"http://127.0.0.1:{process.port}"
    assert process.ws_url == f"ws://127.0.0.1:{process.port}/ws/consultation"
