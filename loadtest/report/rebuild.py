"""``loadtest report``: summary.json and every report, rebuilt from a run directory's raw files.

One pass reads the interval files (:func:`loadtest.analysis.summary.read_run_dir`); the SLO
file, if any, is judged on that pass's totals and series; ``summary.json`` is written
atomically into the run directory and the reports beside it (or into ``out``). Runs of 30
steady buckets or more also get their soak drift (:mod:`loadtest.analysis.drift`) in the
reports; it never changes the exit code (the contract's exit 4 is for compare and trend).
Step-load runs also get their capacity analysis (:mod:`loadtest.analysis.capacity`), judged by
the same SLO file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.analysis.summary import RunFacts, build_summary, read_run_dir, report_input
from loadtest.metrics.stream_rows import STREAMS_FILE, write_parquet_rows
from loadtest.rundir import read_json, write_json


def rebuild(
    run_dir: Path,
    *,
    formats: Sequence[str] = ("html", "md", "json"),
    slo: Path | None = None,
    warmup_s: float | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Rebuild ``summary.json`` (and the reports in ``formats``) and return the summary.

    Raises:
        UsageError: not a run directory, a bad SLO file (naming its line), an unknown format.
    """
    from loadtest.analysis.capacity import capacity_headline, run_capacity
    from loadtest.analysis.drift import drift_span, run_drift
    from loadtest.analysis.slo import evaluate
    from loadtest.analysis.slo_spec import load_slo
    from loadtest.report.renderers import check_formats, write_reports

    check_formats(formats)
    spec = load_slo(slo) if slo is not None else None
    spans = tuple(spec.window_spans()) if spec is not None else ()
    if formats:
        # Long soaks are tested for drift on minute buckets: read them in the same pass.
        facts = RunFacts(read_json(run_dir / "run.json"))
        duration = _duration(facts)
        extra = drift_span(duration, facts.window_s)
        spans = (*spans, extra) if extra is not None else spans
    read = read_run_dir(run_dir, warmup_s=warmup_s, spans=spans)
    summary = build_summary(run_dir, read=read)
    if spec is not None:
        checks = evaluate(spec, summary, read[2].series)
        summary = build_summary(run_dir, read=read, extra_checks=checks)
    capacity = run_capacity(run_dir, read[0], spec)
    if capacity is not None:  # CI reads summary.json: the knee belongs there too
        summary["capacity"] = capacity_headline(capacity)
    write_json(run_dir / "summary.json", summary)
    if (run_dir / STREAMS_FILE).exists():
        write_parquet_rows(run_dir)  # the same rows, typed and columnar, for soak-sized runs
    if formats:
        report = report_input(summary, read[0], read[2])
        report.drift = run_drift(read[2])
        report.capacity = capacity
        write_reports(report, formats, out or run_dir)
    return summary


def _duration(facts: RunFacts) -> float | None:
    if facts.started_s is None or facts.stopped_s is None:
        return None
    return facts.stopped_s - facts.started_s
