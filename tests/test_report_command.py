"""`loadtest report` as CI meets it: a run directory in, reports and an exit code out."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from loadtest.metrics.window import MetricWindow
from tests.analysis.rundirs import write_run_dir


def steady_50ms(window: MetricWindow, second: int) -> None:
    """30 streams a second, first chunk at 50 ms, except one 2 s stall at second 40."""
    for _ in range(30):
        window.record("ttfc_ms", 2000.0 if second == 40 else 50.0)
    window.count("streams_started", 30)
    window.count("streams_completed", 30)


def report(run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "report", str(run), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run_dir(tmp_path_factory.mktemp("report") / "run", 120, steady_50ms)


def slo_file(tmp_path: Path, *checks: str, min_samples: int = 20) -> Path:
    path = tmp_path / "slo.toml"
    lines = ",\n".join(f'  "{check}"' for check in checks)
    path.write_text(f"min_samples = {min_samples}\nchecks = [\n{lines},\n]\n")
    return path


@pytest.mark.parametrize(
    ("checks", "code", "verdict"),
    [
        (("ttfc_ms.p95 < 800",), 0, "pass"),
        (("ttfc_ms.p999 < 800",), 3, "fail"),  # the stall is 30 of 3,600 samples
        (("ttfc_ms.p99 < 800 over 60s",), 3, "fail"),  # …and it all falls in one minute
        (("ttfc_ms.p99 < 2500 over 60s",), 0, "pass"),
        (("reconnect_success_rate >= 0.99",), 3, "inconclusive"),  # no reconnect attempted
    ],
    ids=["pass", "fail", "windowed-fail", "windowed-pass", "inconclusive"],
)
def test_each_verdict_has_its_exit_code(
    run_dir: Path, tmp_path: Path, checks: tuple[str, ...], code: int, verdict: str
) -> None:
    done = report(run_dir, "--slo", str(slo_file(tmp_path, *checks)),
                  "--format", "json,junit", "--out", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == code, done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    judged = [c for c in summary["slo"]["checks"] if not c["builtin"]]
    assert [c["verdict"] for c in judged] == [verdict]
    assert verdict.upper() in done.stderr
    suite = ElementTree.parse(tmp_path / "out" / "report.xml").getroot()
    assert suite.iter("testcase").__next__() is not None


def test_a_windowed_check_on_too_thin_windows_is_inconclusive(
    run_dir: Path, tmp_path: Path
) -> None:
    path = slo_file(tmp_path, "ttfc_ms.p99 < 800 over 60s", min_samples=5000)
    done = report(run_dir, "--slo", str(path), "--format", "json", "--out", str(tmp_path))
    assert done.returncode == 3
    [check] = [c for c in json.loads((tmp_path / "report.json").read_text())["summary"]["slo"]
               ["checks"] if not c["builtin"]]  # fmt: skip
    assert check["verdict"] == "inconclusive" and check["windows_skipped"] == 2


def test_a_bad_slo_file_is_exit_2_naming_its_line(run_dir: Path, tmp_path: Path) -> None:
    path = slo_file(tmp_path, "ttfc_ms.p95 < 800", "ttfc_msec.p99 < 900")
    done = report(run_dir, "--slo", str(path))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert f"{path}:4:" in line and "ttfc_msec" in line and "ttfc_ms" in line


def test_an_unknown_format_is_exit_2(run_dir: Path) -> None:
    done = report(run_dir, "--format", "pdf")
    assert done.returncode == 2 and "pdf" in done.stderr


def test_not_a_run_directory_is_exit_2(tmp_path: Path) -> None:
    done = report(tmp_path)
    assert done.returncode == 2 and "not a run directory" in done.stderr


def test_the_terminal_shows_the_table_and_the_verdict(run_dir: Path, tmp_path: Path) -> None:
    done = report(run_dir, "--format", "md", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "ttfc_ms" in done.stderr and "PASS" in done.stderr
    assert (tmp_path / "report.md").read_text().splitlines()[0].startswith(("✅", "#"))
