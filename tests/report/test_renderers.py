"""Every report format, rendered from a hand-built run with known verdicts and banners."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loadtest.analysis.series import WindowSeries
from loadtest.errors import UsageError
from loadtest.report.model import REPORT_SCHEMA, ReportInput
from loadtest.report.renderers import RENDERERS, write_reports
from tests.report.synthetic import HOSTILE, report_input

FILENAMES = {"html": "report.html", "md": "report.md", "json": "report.json", "junit": "report.xml"}


@pytest.fixture(scope="module")
def report() -> ReportInput:
    return report_input()


@pytest.fixture(scope="module")
def page(report: ReportInput) -> str:
    _, content = RENDERERS["html"](report)
    assert isinstance(content, str)
    return content


class Resources(HTMLParser):
    """Every tag and every attribute that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.fetching: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in {"src", "href", "srcset", "action", "poster", "data", "background"}:
                self.fetching.append((tag, name, value or ""))


def test_every_format_renders_to_its_file_name(report: ReportInput) -> None:
    assert set(RENDERERS) == set(FILENAMES)
    for name, renderer in RENDERERS.items():
        filename, content = renderer(report)
        assert filename == FILENAMES[name]
        assert content


class TestHtml:
    def test_verdicts_and_banners_come_before_the_table_and_the_figures(self, page: str) -> None:
        order = [page.index(marker) for marker in (
            "Interrupted", 'id="verdicts"', 'id="run"', 'id="percentiles"', 'id="over_time"',
            'id="spectra"', 'id="generator"', 'id="definitions"',
        )]  # fmt: skip
        assert order == sorted(order)
        verdicts = page[page.index('id="verdicts"') : page.index('id="run"')]
        for check in ("streams_completed &gt; 0", "ttfc_ms.p95 &lt; 800", "stream_ms.p99 &lt; 400",
                      "reconnect_ms.p99 &lt; 2000"):  # fmt: skip
            assert check in verdicts
        assert verdicts.count('class="verdict pass"') == 2
        assert verdicts.count('class="verdict fail"') == 1
        assert verdicts.count('class="verdict inconclusive"') == 1
        assert "built-in gate" in verdicts
        assert "13,000" in verdicts and "502" in verdicts
        assert "SIGINT" in page and "Generator saturated" in page

    def test_the_table_is_the_steady_state_and_says_where_the_whole_run_is(self, page: str) -> None:
        table = page[page.index('id="percentiles"') : page.index('id="over_time"')]
        assert "Steady state 2026-12-01T21:20:20Z" in table
        assert "metrics_all" in table
        assert "<code>ttfc_ms</code>" in table and "51.20" in table
        assert "<code>pong_rtt_ms</code>" not in table  # no sample: no row

    def test_every_image_is_inline_and_nothing_is_fetched(self, page: str) -> None:
        parsed = Resources()
        parsed.feed(page)
        assert len(parsed.images) >= 10
        assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
        assert parsed.fetching == []
        assert not {"script", "link", "iframe", "object", "embed"} & set(parsed.tags)
        style = page[page.index("<style>") : page.index("</style>")]
        assert "url(" not in style and "@import" not in style and "//" not in style
        assert "default-src 'none'" in page  # the browser refuses any fetch, too
        without_data = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', "", page)
        assert 'src="' not in without_data

    def test_strings_from_the_run_are_escaped(self, page: str) -> None:
        assert HOSTILE not in page
        assert "<script" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "x=&lt;b&gt;&amp;y=1" in page

    def test_every_metric_definition_is_shown(self, page: str) -> None:
        from loadtest.metrics.definitions import LATENCY_DEFINITIONS

        definitions = page[page.index('id="definitions"') :]
        for key in LATENCY_DEFINITIONS:
            assert f"<code>{key}</code>" in definitions
        assert "<code>user_message</code> sent → first <code>ai_message_chunk</code>" in definitions


class TestMarkdown:
    def test_the_verdict_line_comes_first_then_banners_and_checks(
        self, report: ReportInput
    ) -> None:
        _, text = RENDERERS["md"](report)
        assert isinstance(text, str)
        lines = text.splitlines()
        assert lines[0].startswith("### ❌ FAIL: loadtest")
        assert "2 of 4 checks not passed" in lines[0]
        assert any(line.startswith("> ⚠️ **Interrupted**") for line in lines[:6])
        assert "| ❌ fail | `stream_ms.p99 < 400` | 502 | 13,000 |" in lines
        assert "| ⚠️ inconclusive | `reconnect_ms.p99 < 2000` | - | 3 |" in lines
        assert "| ✅ pass | `streams_completed > 0` (built-in) | 13,000 | 15,000 |" in lines
        assert any(line.startswith("| `ttfc_ms` | 13,000 | 51.20") for line in lines)
        assert "![" not in text and "<img" not in text

    def test_hostile_strings_stay_inert(self) -> None:
        _, text = RENDERERS["md"](report_input(scenario="a|b <i>x</i> `tick`"))
        assert isinstance(text, str)
        outside_code = re.sub(r"`[^`]*`", "", text)
        assert "<i>" not in outside_code and "<b>" not in outside_code
        assert r"a\|b &lt;i&gt;x&lt;/i&gt; \`tick\`" in text.splitlines()[0]


def test_json_has_the_report_schema_and_null_analyses(report: ReportInput) -> None:
    _, text = RENDERERS["json"](report)
    document = json.loads(text)
    assert document["schema"] == REPORT_SCHEMA == "loadtest.report/1"
    assert document["summary"] == report.summary
    assert document["drift"] is None and document["capacity"] is None
    carried = ReportInput({**report.summary, "drift": {"verdict": "none"}}, report.run,
                          report.series)  # fmt: skip
    assert json.loads(RENDERERS["json"](carried)[1])["drift"] == {"verdict": "none"}


def test_junit_has_one_case_per_check_and_counts_inconclusive_as_failure(
    report: ReportInput,
) -> None:
    filename, content = RENDERERS["junit"](report)
    suite = ET.fromstring(content)
    assert filename == "report.xml" and suite.tag == "testsuite"
    assert suite.get("name") == "loadtest"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "0")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "streams_completed > 0", "ttfc_ms.p95 < 800", "stream_ms.p99 < 400",
        "reconnect_ms.p99 < 2000",
    ]  # fmt: skip
    assert {case.get("classname") for case in cases} == {"loadtest.slo"}
    assert [case.find("failure") is None for case in cases] == [True, True, False, False]
    failed, inconclusive = cases[2].find("failure"), cases[3].find("failure")
    assert failed is not None and inconclusive is not None
    assert failed.get("type") == "fail" and failed.text == "value 502, samples 13,000"
    assert "502" in (failed.get("message") or "")
    assert inconclusive.get("type") == "inconclusive"
    assert "INTERRUPTED" in (suite.findtext("system-out") or "")


class TestWriteReports:
    def test_writes_every_format_and_leaves_no_temporary_file(
        self, report: ReportInput, tmp_path: Path
    ) -> None:
        written = write_reports(report, ["junit", "md", "json", "html", "md"], tmp_path / "out")
        assert [path.name for path in written] == ["report.xml", "report.md", "report.json",
                                                   "report.html"]  # fmt: skip
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
            path.name for path in written
        )
        ET.parse(tmp_path / "out" / "report.xml")
        assert (tmp_path / "out" / "report.md").read_text(encoding="utf-8").startswith("### ❌")

    def test_an_unknown_format_names_it_and_the_known_ones_and_writes_nothing(
        self, report: ReportInput, tmp_path: Path
    ) -> None:
        with pytest.raises(UsageError) as raised:
            write_reports(report, ["md", "pdf"], tmp_path)
        assert str(raised.value) == "unknown report format 'pdf' (known: html, json, junit, md)"
        assert raised.value.exit_code == 2
        assert list(tmp_path.iterdir()) == []


def test_a_bare_summary_and_no_series_still_render_in_every_format(tmp_path: Path) -> None:
    # An old run: no steady_state, no metrics_all, no slo, no generator, no windows.
    bare = ReportInput(summary={"metrics": {}, "counts": {}}, run={}, series=WindowSeries(1.0))
    written = write_reports(bare, list(RENDERERS), tmp_path)
    assert len(written) == 4
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("### ⚠️ INCONCLUSIVE")
    assert ET.parse(tmp_path / "report.xml").getroot().get("tests") == "0"


def test_importing_the_renderers_does_not_import_matplotlib() -> None:
    # A fresh interpreter: the CLI imports the registry even when it writes only md or junit.
    probe = "import sys, loadtest.report.renderers; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)  # fmt: skip
    assert result.stdout.strip() == "False"


def test_a_2000_bucket_series_renders_in_bounded_time() -> None:
    large = report_input(buckets=2_000)
    started = time.perf_counter()
    _, page = RENDERERS["html"](large)
    elapsed = time.perf_counter() - started
    assert page.count("<img ") == 10
    assert elapsed < 20.0, f"{elapsed:.1f} s"  # ~1.1–1.5 s on a 2-core CI machine
