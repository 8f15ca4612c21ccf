"""The HTML report of a real run opens in headless Chromium, offline, and every figure loads.

Chromium is given no network to speak of (no background fetches, every host name unresolvable)
and the page's own Content-Security-Policy forbids any fetch, so a figure that is not inline
fails to load and the count shows it. A probe script, injected into a copy of the page (the
report itself has no script), writes on ``load`` how many images there are and how many
decoded; ``--dump-dom`` prints the DOM after that.

CI installs Debian's ``chromium`` and sets ``LOADTEST_REQUIRE_CHROMIUM=1``, so there a missing
browser fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
MIN_FIGURES = 6

PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = "PROBE" + JSON.stringify({images: images.length, loaded: loaded.length,
    svgs: document.querySelectorAll("svg").length});
  document.body.appendChild(out);
});
</script>"""


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("LOADTEST_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"LOADTEST_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)


def probed_copy(page: Path, out: Path, *, extra_body: str = "") -> Path:
    html = page.read_text(encoding="utf-8")
    # Allow the probe's inline script and nothing else: every fetch stays forbidden.
    assert "default-src 'none';" in html
    html = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
    html = html.replace("</head>", PROBE + "</head>", 1)
    html = html.replace("</body>", extra_body + "</body>", 1)
    out.write_text(html, encoding="utf-8")
    return out


def open_in_chromium(page: Path, profile: Path) -> dict[str, int]:
    done = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    match = re.search(r"PROBE(\{.*?\})", done.stdout)
    assert match, f"no probe output (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_chromium()
    base = tmp_path_factory.mktemp("chromium")
    run_dir = base / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "run", "-u", "5", "-t", "4s", "--out", str(run_dir),
         "--target-args", "--profile fixed", "--", "--think-time", "0.1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir / "report.html"  # written by the run itself, from its raw files


def test_the_report_of_a_real_run_loads_every_figure_offline(
    real_report: Path, tmp_path: Path
) -> None:
    counts = open_in_chromium(probed_copy(real_report, tmp_path / "probe.html"), tmp_path / "p")
    figures = counts["images"] + counts["svgs"]
    assert figures >= MIN_FIGURES, counts
    assert counts["loaded"] == counts["images"], counts


def test_the_probe_sees_an_image_that_would_need_the_network(
    real_report: Path, tmp_path: Path
) -> None:
    # The control: a fetched image is refused (CSP; and nothing listens there), so the probe can
    # tell. Loopback only: tests never address another host.
    fetched = '<img alt="remote" src="http://127.0.0.1:9/x.png">'
    page = probed_copy(real_report, tmp_path / "control.html", extra_body=fetched)
    counts = open_in_chromium(page, tmp_path / "p")
    assert counts["loaded"] == counts["images"] - 1, counts


@pytest.fixture(scope="module")
def analysis_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """compare.html (one run a side) and trend.html (ten nightlies with a step), as the
    commands write them."""
    from click.testing import CliRunner

    from loadtest.cli import main
    from tests.test_compare_command import chat_run
    from tests.test_trend_command import nightlies, noisy

    require_chromium()
    base = tmp_path_factory.mktemp("analysis_pages")
    fast, slow = chat_run(base / "fast", 50.0, 1), chat_run(base / "slow", 80.0, 3)
    runner = CliRunner()
    done = runner.invoke(main, ["compare", str(fast), "--candidate", str(slow), "--format", "html",
                                "--out", str(base / "compare")])  # fmt: skip
    assert done.exit_code == 4, done.output
    runs = nightlies(base / "nightlies", noisy([50.0] * 6 + [80.0] * 4))
    done = runner.invoke(main, ["trend", *map(str, runs), "--format", "html",
                                "--out", str(base / "trend")])  # fmt: skip
    assert done.exit_code == 4, done.output
    return {"compare": base / "compare" / "compare.html", "trend": base / "trend" / "trend.html"}


@pytest.mark.parametrize(("page", "figures"), [("compare", 1), ("trend", 3)])
def test_compare_and_trend_pages_load_every_figure_offline(
    analysis_pages: dict[str, Path], tmp_path: Path, page: str, figures: int
) -> None:
    probe = probed_copy(analysis_pages[page], tmp_path / f"{page}.html")
    counts = open_in_chromium(probe, tmp_path / "p")
    assert counts["images"] == figures, counts
    assert counts["loaded"] == counts["images"], counts
