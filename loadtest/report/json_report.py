"""``report.json``: the summary with the analyses that apply to the run (``loadtest.report/1``).

``drift`` (runs of at least 30 steady buckets, :mod:`loadtest.analysis.drift`) and
``capacity`` (step-load runs, :mod:`loadtest.analysis.capacity`) come from the report input;
each is ``null`` for runs it does not apply to, as the contract says.
"""

from __future__ import annotations

import json

from loadtest.report.model import REPORT_SCHEMA, ReportInput

FILENAME = "report.json"


def render_json(report: ReportInput) -> tuple[str, str]:
    """The JSON report.

    Args:
        report: the run's report input (its summary, drift and capacity).

    Returns:
        ``("report.json", text)``: ``{"schema", "summary", "drift", "capacity"}``.
    """
    summary = report.summary
    document = {
        "schema": REPORT_SCHEMA,
        "summary": summary,
        "drift": report.drift if report.drift is not None else summary.get("drift"),
        "capacity": report.capacity,
    }
    # default=str: a stray non-JSON value (a Path, a datetime) must not lose the whole report.
    return FILENAME, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
