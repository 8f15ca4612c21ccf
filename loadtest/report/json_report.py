"""``report.json``: the summary with the analyses that apply to the run (``loadtest.report/1``).

``drift`` (runs of at least 30 steady buckets) comes from the report input
(:mod:`loadtest.analysis.drift`); ``capacity`` (step-load runs) is computed elsewhere, and until
it is, a summary that carries it passes it through. Each is ``null`` for runs it does not apply
to, as the contract says.
"""

from __future__ import annotations

import json

from loadtest.report.model import REPORT_SCHEMA, ReportInput

FILENAME = "report.json"


def render_json(report: ReportInput) -> tuple[str, str]:
    """The JSON report.

    Args:
        report: the run's report input (its summary and drift).

    Returns:
        ``("report.json", text)``: ``{"schema", "summary", "drift", "capacity"}``.
    """
    summary = report.summary
    document = {
        "schema": REPORT_SCHEMA,
        "summary": summary,
        "drift": report.drift if report.drift is not None else summary.get("drift"),
        "capacity": summary.get("capacity"),
    }
    # default=str: a stray non-JSON value (a Path, a datetime) must not lose the whole report.
    return FILENAME, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
