"""`loadtest compare` as CI meets it: run directories in; a table, files and an exit code out."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from loadtest.analysis.summary import build_summary
from loadtest.cli import main
from loadtest.commands.compare import spread_candidates
from loadtest.metrics.window import MetricWindow
from loadtest.rundir import write_json
from tests.analysis.rundirs import write_run_dir


def chat_run(path: Path, ttfc_ms: float, seed: int) -> Path:
    """60 s of 40 streams a second, first chunk log-normal around ``ttfc_ms``; with its
    summary.json, as ``loadtest run`` leaves it."""
    rng = np.random.default_rng(seed)

    def fill(window: MetricWindow, _second: int) -> None:
        window.record_many("ttfc_ms", rng.lognormal(np.log(ttfc_ms), 0.25, 40).tolist())
        window.count("streams_started", 40)
        window.count("streams_completed", 40)

    write_run_dir(path, 60, fill)
    write_json(path / "summary.json", build_summary(path))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare_command")
    made = {
        "fast": chat_run(root / "fast", 50.0, 1),
        "fast_again": chat_run(root / "again", 50.0, 2),
        "slow": chat_run(root / "slow", 80.0, 3),
    }
    for i in range(3):
        made[f"base{i}"] = chat_run(root / f"base{i}", 50.0, 10 + i)
        made[f"cand{i}"] = chat_run(root / f"cand{i}", 80.0, 20 + i)
    return made


def compare(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def table_rows(output: str) -> list[list[str]]:
    """The comparison table's rows (metric, stat, …, verdict), without header and rule."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("metric")) + 2
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_a_regression_exits_4_with_one_line_per_metric_and_percentile(
    runs: dict[str, Path],
) -> None:
    result = compare(runs["fast"], "--candidate", runs["slow"])
    assert result.exit_code == 4, result.output
    rows = table_rows(result.stdout)
    assert [(row[0], row[1], row[-1]) for row in rows] == [
        ("ttfc_ms", "p50", "regressed"),
        ("ttfc_ms", "p95", "regressed"),
        ("ttfc_ms", "p99", "regressed"),
        ("error_rate", "value", "unchanged"),
    ]
    lines = result.stdout.splitlines()
    assert "verdict: REGRESSED: ttfc_ms.p50, ttfc_ms.p95, ttfc_ms.p99 (exit 4)" in lines
    assert any(line.startswith("note: single run per side:") for line in lines)


def test_two_runs_of_the_same_target_exit_0(runs: dict[str, Path]) -> None:
    result = compare(runs["fast"], "--candidate", runs["fast_again"])
    assert result.exit_code == 0, result.output
    assert {row[-1] for row in table_rows(result.stdout)} == {"unchanged"}
    assert "verdict: unchanged: no change beyond 5 % with an interval excluding 0" in result.stdout


def test_an_improvement_exits_0_with_verdict_improved(runs: dict[str, Path]) -> None:
    result = compare(runs["slow"], "--candidate", runs["fast"])
    assert result.exit_code == 0, result.output
    assert [row[-1] for row in table_rows(result.stdout)][:3] == ["improved"] * 3
    assert "verdict: improved: ttfc_ms.p50, ttfc_ms.p95, ttfc_ms.p99; nothing regressed" in (
        result.stdout
    )


def test_out_gets_compare_md_and_compare_json(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = compare(runs["fast"], "--candidate", runs["slow"], "--out", out, "--threshold", "10")
    assert result.exit_code == 4
    document = json.loads((out / "compare.json").read_text())
    assert document["schema"] == "loadtest.compare/1"
    assert document["base"] == [str(runs["fast"])] and document["candidate"] == [str(runs["slow"])]
    assert document["threshold_pct"] == 10.0 and document["verdict"] == "regressed"
    p95 = document["metrics"]["ttfc_ms"]["p95"]
    assert set(p95) >= {"base", "candidate", "delta", "delta_pct", "ci", "verdict"}
    assert document["notes"]
    markdown = (out / "compare.md").read_text()
    assert markdown.startswith("### ❌ loadtest compare: regressed\n")
    assert "| `ttfc_ms` | p95 |" in markdown
    assert not list(out.glob(".*.tmp"))


def test_without_out_a_named_format_is_printed_after_the_table(runs: dict[str, Path]) -> None:
    result = compare(runs["fast"], "--candidate", runs["fast_again"], "--format", "table,json")
    assert result.exit_code == 0
    document = json.loads(result.stdout[result.stdout.index("\n{") :])
    assert document["verdict"] == "unchanged"


def test_one_candidate_option_takes_several_runs_and_the_spread_is_shown(
    runs: dict[str, Path],
) -> None:
    base = [runs[f"base{i}"] for i in range(3)]
    candidates = [runs[f"cand{i}"] for i in range(3)]
    result = compare(*base, "--candidate", *candidates, "--metrics", "ttfc_ms")
    assert result.exit_code == 4, result.output
    assert result.stdout.startswith("loadtest compare: 3 base run(s) vs 3 candidate run(s)")
    assert "run-to-run spread (mean ± sd, CV, 95 % t-interval of the mean):" in result.stdout
    assert "single run per side" not in result.stdout


def test_candidate_runs_end_at_the_next_option() -> None:
    assert spread_candidates(["b1", "b2", "--candidate", "c1", "c2", "--threshold", "3"]) == [
        "b1", "b2", "--candidate", "c1", "--candidate", "c2", "--threshold", "3",
    ]  # fmt: skip
    assert spread_candidates(["b", "--candidate=c1", "c2"]) == [
        "b", "--candidate=c1", "--candidate", "c2",
    ]  # fmt: skip
    assert spread_candidates(["b", "--candidate", "c1", "--candidate", "c2"]) == [
        "b", "--candidate", "c1", "--candidate", "c2",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{tmp}/nowhere", "--candidate", "{slow}"),
         "loadtest: error: {tmp}/nowhere: not a run directory (no run.json)"),
        (("{fast}", "--candidate", "{slow}", "--metrics", "ttfc"),
         "loadtest: error: unknown metric 'ttfc' (known: connect_ms,"),
        (("{fast}", "--candidate", "{slow}", "--metrics", "inter_chunk_ms"),
         "loadtest: error: inter_chunk_ms: no samples in the steady state of {fast}"),
        (("{fast}", "--candidate", "{slow}", "--format", "xml"),
         "loadtest: error: unknown compare format 'xml' (known: table, md, json, html)"),
        (("{fast}", "--candidate", "{slow}", "--format", "table,html"),
         "loadtest: error: --format html writes compare.html: give --out DIR"),
        (("{fast}",), "loadtest: error: Missing option '--candidate'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(
    runs: dict[str, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    names = {"tmp": tmp_path, "fast": runs["fast"], "slow": runs["slow"]}
    result = compare(*(arg.format(**names) for arg in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message.format(**names))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def inline_pngs(page: str) -> list[bytes]:
    """Every ``data:image/png`` image of a page, decoded."""
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                          page)]  # fmt: skip


def assert_self_contained(page: str) -> None:
    """Nothing on the page would make a browser fetch: no URL, no source but ``data:``."""
    assert "http://" not in page and "https://" not in page
    assert re.findall(r'src="(?!data:)', page) == []
    assert "<script" not in page and "<link" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_html_has_the_verdict_first_a_table_per_metric_and_an_inline_figure(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    result = compare(runs["fast"], "--candidate", runs["slow"], "--format", "html", "--out", out)
    assert result.exit_code == 4, result.output
    assert sorted(p.name for p in out.iterdir()) == ["compare.html"], "only the formats asked for"
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    body = page[page.index("<body>") :]
    verdict = body.index('<span class="verdict fail">REGRESSED</span>')
    caution = body.index('<div class="banner caution"><strong>Caution</strong>: single run')
    tables = [body.index(f'<h2 id="metric-{metric}">') for metric in ("ttfc_ms", "error_rate")]
    assert verdict < caution < tables[0] < tables[1]
    assert body.count("<table>") == 3  # the runs, then one per metric
    assert "verdict: REGRESSED: ttfc_ms.p50, ttfc_ms.p95, ttfc_ms.p99 (exit 4)" in body
    assert "required change" in body
    assert "Method: docs/analysis.md, &quot;Comparing runs&quot;" in body
    (figure,) = inline_pngs(page)
    assert figure.startswith(PNG_SIGNATURE) and len(figure) > 10_000


def test_html_with_several_runs_shows_their_spread(runs: dict[str, Path], tmp_path: Path) -> None:
    base = [runs[f"base{i}"] for i in range(3)]
    candidates = [runs[f"cand{i}"] for i in range(3)]
    out = tmp_path / "cmp"
    result = compare(*base, "--candidate", *candidates, "--metrics", "ttfc_ms,error_rate",
                     "--format", "md,html", "--out", out)  # fmt: skip
    assert result.exit_code == 4, result.output
    assert (out / "compare.md").is_file()
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "Caution" not in page
    assert page.count("<th>base runs</th>") == 2  # ttfc_ms and error_rate
    assert re.search(r"<td>\d+\.\d\d ± \d+\.\d\d, CV \d", page)
    assert all(png.startswith(PNG_SIGNATURE) for png in inline_pngs(page))


def test_a_saved_compare_json_renders_the_same_page(runs: dict[str, Path], tmp_path: Path) -> None:
    from loadtest.report.compare_render import render_compare_html

    out = tmp_path / "cmp"
    compare(runs["fast"], "--candidate", runs["fast_again"], "--format", "json,html", "--out", out)
    document = json.loads((out / "compare.json").read_text())
    assert render_compare_html(document) == ("compare.html", (out / "compare.html").read_text())


def test_run_names_are_escaped_in_html() -> None:
    from loadtest.report.compare_render import render_compare_html

    hostile = "<script>alert(1)</script>"
    document = {"base": [hostile], "candidate": ["c"], "threshold_pct": 5.0, "metrics": {},
                "verdict": "unchanged", "notes": [hostile],
                "method": {"cautious": True}}  # fmt: skip
    _, page = render_compare_html(document)
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Nothing to compare." in page


def test_md_and_json_output_never_imports_matplotlib(runs: dict[str, Path], tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from loadtest.cli import main\n"
        f"result = CliRunner().invoke(main, ['compare', {str(runs['fast'])!r}, '--candidate', "
        f"{str(runs['fast_again'])!r}, '--format', 'md,json', '--out', {str(tmp_path)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
