"""``report.json``: the summary with the analyses that apply to the run (``loadtest.report/1``).

``drift`` (soaks of at least 30 windows) and ``capacity`` (step-load runs) are computed
elsewhere; until they are, a summary that carries them under those keys passes them through,
and they are ``null`` otherwise, as the contract says for runs they do not apply to.
"""

from __future__ import annotations

import json

from loadtest.report.model import REPORT_SCHEMA, ReportInput

FILENAME = "report.json"


def render_json(report: ReportInput) -> tuple[str, str]:
    """The JSON report.

    Args:
        report: the run's report input (only the summary is read).

    Returns:
        ``("report.json", text)``: ``{"schema", "summary", "drift", "capacity"}``.
    """
    summary = report.summary
    document = {
        "schema": REPORT_SCHEMA,
        "summary": summary,
        "drift": summary.get("drift"),
        "capacity": summary.get("capacity"),
    }
    # default=str: a stray non-JSON value (a Path, a datetime) must not lose the whole report.
    return FILENAME, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
