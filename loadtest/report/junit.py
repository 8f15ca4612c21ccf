"""``report.xml``: JUnit XML, one test case per SLO check, for CI dashboards.

A CI system shows a JUnit failure where people look; an ``inconclusive`` check (too few
samples) is a ``<failure type="inconclusive">`` so that no dashboard counts it as a pass, as
``loadtest`` itself exits 3 for it. The built-in gate is a check like the others. Why a run is
marked (interrupted, incomplete) and the terminal tables go to ``<system-out>``, which CI
systems attach to the suite.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from loadtest.report import headline
from loadtest.report.model import ReportInput
from loadtest.report.table import render_percentile_table
from loadtest.report.verdict import render_verdict

FILENAME = "report.xml"
SUITE = "loadtest"
CLASSNAME = "loadtest.slo"


def render_junit(report: ReportInput) -> tuple[str, bytes]:
    """The JUnit report.

    Args:
        report: the run's summary and metadata.

    Returns:
        ``("report.xml", bytes)``: UTF-8 XML with its declaration; ``failures`` counts the
        failed and the inconclusive checks.
    """
    summary, run = report.summary, report.run
    checks = headline.checks(summary)
    not_passed = sum(1 for check in checks if check.get("verdict") != "pass")
    duration = summary.get("duration_s")
    suite = ET.Element(
        "testsuite",
        {
            "name": SUITE,
            "tests": str(len(checks)),
            "failures": str(not_passed),
            "errors": "0",
            "skipped": "0",
            "time": f"{float(duration):.3f}" if isinstance(duration, int | float) else "0",
        },
    )
    if run.get("started_utc"):
        suite.set("timestamp", str(run["started_utc"]).removesuffix("Z"))
    if run.get("host"):
        suite.set("hostname", str(run["host"]))
    properties = ET.SubElement(suite, "properties")
    for name, value in headline.run_facts(run, summary):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for check in checks:
        _testcase(suite, check)
    out = "\n\n".join(
        part for part in (render_verdict(summary), render_percentile_table(summary)) if part
    )
    ET.SubElement(suite, "system-out").text = out
    ET.indent(suite)
    return FILENAME, ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def _testcase(suite: ET.Element, check: Mapping[str, Any]) -> None:
    text = str(check.get("check", "?"))
    case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": text, "time": "0"})
    verdict = check.get("verdict")
    if verdict == "pass":
        return
    value = headline.format_value(check.get("value"))
    samples = headline.format_value(check.get("samples"))
    detail = f"value {value}, samples {samples}"
    reason = check.get("reason")
    if verdict == "fail":
        message = f"{text} failed: {detail}"
        attributes = {"message": message, "type": "fail"}
    else:
        why = f" ({reason})" if reason else " (too few samples to judge)"
        message = f"{text} inconclusive{why}: {detail}"
        attributes = {"message": message, "type": "inconclusive"}
    ET.SubElement(case, "failure", attributes).text = detail
