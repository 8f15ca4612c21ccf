"""``loadtest trend``: a step in a series of nightly runs is found at the right run, and the exit
code says whether the newest run is in a worse segment."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from loadtest.analysis.trend import change_points
from loadtest.cli import main
from loadtest.metrics.window import MetricWindow
from tests.analysis.rundirs import START, write_run_dir

DAY_S = 86_400.0


def nightlies(root: Path, ttfc_ms: Sequence[float]) -> list[Path]:
    """One short run per night, the n-th with every TTFC at ``ttfc_ms[n]``; returned newest
    first, so the command must order them by start time itself."""
    runs = []
    for night, value in enumerate(ttfc_ms):

        def fill(window: MetricWindow, second: int, value: float = value) -> None:
            for _ in range(10):
                window.record("ttfc_ms", value)
                window.record("stream_ms", 1000.0)
            window.count("streams_started", 10)
            window.count("streams_completed", 10)

        run = write_run_dir(root / f"nightly-{night + 1:02d}", 5, fill)
        meta = json.loads((run / "run.json").read_text())
        meta["load"]["started_s"] = START + night * DAY_S
        meta["load"]["stopped_s"] = START + night * DAY_S + 5
        (run / "run.json").write_text(json.dumps(meta))
        runs.append(run)
    return runs[::-1]


def noisy(means: Sequence[float], seed: int = 4) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(m + rng.normal(0.0, 1.5)) for m in means]


def trend(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["trend", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_a_step_in_the_newest_segment_is_found_between_runs_six_and_seven(tmp_path: Path) -> None:
    runs = nightlies(tmp_path, noisy([50.0] * 6 + [80.0] * 4))
    code, out, _ = trend(*runs, "--format", "table,json", "--out", tmp_path / "out")
    assert code == 4, out
    assert "nightly-06 | nightly-07" in out
    assert "regression: the newest run (nightly-10) is in a worse segment: ttfc_ms.p95 +" in out
    result = json.loads((tmp_path / "out" / "trend.json").read_text())
    assert [run["name"] for run in result["runs"]] == [f"nightly-{n:02d}" for n in range(1, 11)]
    (step,) = result["metrics"]["ttfc_ms.p95"]["change_points"]
    assert (step["before_run"], step["after_run"]) == ("nightly-06", "nightly-07")
    assert step["mean_before"] == pytest.approx(50.0, abs=1.5)
    assert step["mean_after"] == pytest.approx(80.0, abs=1.5)
    assert step["step_pct"] == pytest.approx(60.0, abs=5.0) and step["worse"]
    assert result["metrics"]["stream_ms.p95"]["change_points"] == []
    assert not (tmp_path / "out" / "trend.md").exists(), "only the formats asked for"


def test_ten_flat_runs_exit_0(tmp_path: Path) -> None:
    code, out, _ = trend(*nightlies(tmp_path, noisy([50.0] * 10)))
    assert code == 0, out
    assert "no regression in the newest run (nightly-10); 0 change point(s)" in out


def test_a_step_that_was_fixed_again_exits_0(tmp_path: Path) -> None:
    runs = nightlies(tmp_path, noisy([50.0] * 4 + [80.0] * 3 + [50.0] * 5))
    code, out, _ = trend(*runs, "--format", "md")
    assert code == 0
    assert "nightly-04 \\| nightly-05" in out and "nightly-07 \\| nightly-08" in out, out
    assert "better" in out


def test_json_on_stdout_moves_the_table_to_stderr(tmp_path: Path) -> None:
    code, out, err = trend(*nightlies(tmp_path, [50.0, 50.0, 50.0]), "--format", "json")
    assert code == 0
    assert json.loads(out)["schema"] == "loadtest.trend/1"
    assert err.startswith("trend over 3 runs")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown format 'xml' (known: table, md, json, html)"),
        (["--format", "table,html"], "--format html writes trend.html: give --out DIR"),
        (["--pvalue", "2"], "--pvalue must be between 0 and 1"),
    ],
)
def test_bad_options_are_exit_2_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = trend(*nightlies(tmp_path, [50.0] * 3), *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_a_directory_that_is_no_run_is_exit_2(tmp_path: Path) -> None:
    runs = nightlies(tmp_path, [50.0] * 3)
    (tmp_path / "empty").mkdir()
    code, _, err = trend(*runs, tmp_path / "empty")
    assert code == 2
    expected = f"loadtest: error: {tmp_path / 'empty'}: not a run directory (no run.json)"
    assert err.strip() == expected


def test_fewer_than_three_runs_are_exit_2(tmp_path: Path) -> None:
    code, _, err = trend(*nightlies(tmp_path, [50.0, 80.0]))
    assert code == 2 and "trend needs at least 3 runs, got 2" in err


def test_a_long_series_is_split_in_windows_and_keeps_both_steps() -> None:
    values = noisy([50.0] * 70 + [60.0] * 50 + [45.0] * 40, seed=9)
    found = [point.index for point in change_points(values)]
    assert found == [70, 120]


def test_html_has_the_verdict_a_series_figure_per_metric_and_the_change_points(
    tmp_path: Path,
) -> None:
    runs = nightlies(tmp_path, noisy([50.0] * 6 + [80.0] * 4))
    out = tmp_path / "out"
    code, stdout, _ = trend(*runs, "--format", "html", "--out", out)
    assert code == 4, stdout
    assert stdout.startswith("trend over 10 runs"), "the table is still printed"
    assert sorted(p.name for p in out.iterdir()) == ["trend.html"]
    page = (out / "trend.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert re.findall(r'src="(?!data:)', page) == [] and "<script" not in page
    assert "default-src 'none'" in page
    body = page[page.index("<body>") :]
    assert body.index('<span class="verdict fail">REGRESSION</span>') < body.index("<h2")
    assert "regression: the newest run (nightly-10) is in a worse segment" in body
    for metric in ("ttfc_ms.p95", "stream_ms.p95", "inter_chunk_ms.p95", "error_rate"):
        assert f'<h2 id="metric-{metric}">' in body
    assert "Not recorded in any run." in body  # inter_chunk_ms: these runs have no chunks
    figures = [base64.b64decode(data) for data in
               re.findall(r'src="data:image/png;base64,([^"]+)"', page)]  # fmt: skip
    assert len(figures) == 3 and all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in figures)
    change_points = body[body.index('<h2 id="change-points">') :]
    assert "nightly-06 | nightly-07" in change_points and "WORSE" in change_points


def test_html_of_a_flat_series_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, _ = trend(*nightlies(tmp_path, noisy([50.0] * 5)), "--format", "md,html",
                       "--out", out)  # fmt: skip
    assert code == 0
    page = (out / "trend.html").read_text(encoding="utf-8")
    assert '<span class="verdict pass">NO REGRESSION</span>' in page
    assert "No change point in any headline metric." in page
    assert (out / "trend.md").is_file()


def test_md_and_json_output_never_imports_matplotlib(tmp_path: Path) -> None:
    runs = [str(run) for run in nightlies(tmp_path, [50.0] * 3)]
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from loadtest.cli import main\n"
        f"result = CliRunner().invoke(main, ['trend', *{runs!r}, '--format', 'md,json', "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
