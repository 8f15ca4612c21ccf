"""``loadtest trend RUN_DIR…``: change points across a series of runs (nightlies), oldest first.

Thin: read the runs, call :func:`loadtest.analysis.trend.trend`, print, exit. The table is
always printed (to stdout, or to stderr when Markdown or JSON goes to stdout, so a pipe gets one
clean document); ``--out DIR`` writes ``trend.md`` and ``trend.json`` there instead.

Exit codes: 0 the newest run is not in a worse segment · 2 bad input · 4 it is (a regression).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from loadtest.errors import UsageError

EXIT_OK, EXIT_REGRESSION = 0, 4
FORMATS = ("table", "md", "json")


@click.command("trend")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", default="table", show_default=True,
              help="table, md, json (comma-separated); the table is always printed")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write trend.md / trend.json here [default: print them]")
@click.option("--threshold", "threshold_pct", type=float, default=5.0, show_default=True,
              help="smallest worsening (%) of the newest segment that exits 4")
@click.option("--pvalue", "max_pvalue", type=float, default=0.001, show_default=True,
              help="significance of a change point (Otava's default)")
@click.option("--window", "window_len", type=int, default=50, show_default=True,
              help="runs per window of E-Divisive's split step (Otava's default)")
def trend_command(
    run_dirs: tuple[Path, ...],
    formats: str,
    out: Path | None,
    threshold_pct: float,
    max_pvalue: float,
    window_len: int,
) -> None:
    """Change points across RUN_DIRs (nightlies), ordered by their start time.

    Per headline metric (steady-state ttfc_ms, stream_ms, inter_chunk_ms p95 and error_rate)
    E-Divisive finds where the series stepped. Exit code: 0 ok, 2 bad input, 4 the newest run
    is in a segment worse than the one before by at least --threshold %.
    """
    from loadtest.analysis.trend import read_point, trend

    wanted = [name.strip() for name in formats.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in FORMATS]
    if unknown:
        raise UsageError(f"unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    if not 0.0 < max_pvalue < 1.0:
        raise UsageError(f"--pvalue must be between 0 and 1, not {max_pvalue}")
    if window_len < 2:
        raise UsageError(f"--window must be at least 2 runs, not {window_len}")
    if not math.isfinite(threshold_pct) or threshold_pct < 0:
        raise UsageError(f"--threshold must be a percentage >= 0, not {threshold_pct}")
    points = [read_point(run_dir) for run_dir in dict.fromkeys(run_dirs)]
    result = trend(points, threshold_pct=threshold_pct, max_pvalue=max_pvalue,
                   window_len=window_len)  # fmt: skip
    documents = {"md": render_markdown(result), "json": render_json(result)}
    printed = [name for name in wanted if name in documents] if out is None else []
    click.echo(render_table(result), err=bool(printed))
    for name in printed:
        click.echo(documents[name], nl=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            if name in documents:
                (out / f"trend.{name}").write_text(documents[name], encoding="utf-8")
    sys.exit(EXIT_REGRESSION if result["regressed"] else EXIT_OK)


def render_table(result: dict[str, Any]) -> str:
    """The terminal view: one line per metric, then one per change point, then the verdict."""
    from loadtest.analysis.trend import format_step, format_value

    runs = result["runs"]
    lines = [
        f"trend over {len(runs)} runs, {runs[0]['name']} ({runs[0]['started_utc']}) → "
        f"{runs[-1]['name']} ({runs[-1]['started_utc']})",
        "",
    ]
    rows = [("metric", "runs", "newest", "change points", "newest segment")]
    for name, metric in result["metrics"].items():
        steps = metric["change_points"]
        newest = metric["values"][-1] if metric["values"] else None
        state = "regressed" if metric["regressed"] else ("–" if not steps else "ok")
        rows.append((name, str(len(metric["values"])), format_value(name, newest),
                     str(len(steps)), state))  # fmt: skip
    lines += _columns(rows)
    changes = [("metric", "between", "before → after", "step", "p")]
    for name, metric in result["metrics"].items():
        for step in metric["change_points"]:
            changes.append((
                name,
                f"{step['before_run']} | {step['after_run']}",
                f"{format_value(name, step['mean_before'])} → "
                f"{format_value(name, step['mean_after'])}",
                format_step(name, step) + (" worse" if step["worse"] else " better"),
                f"{step['p_value']:.2g}",
            ))  # fmt: skip
    if len(changes) > 1:
        lines += ["", "change points (E-Divisive; runs either side, segment means):", ""]
        lines += _columns(changes)
    lines += ["", result["sentence"]]
    return "\n".join(lines)


def render_markdown(result: dict[str, Any]) -> str:
    """``trend.md``: the verdict first (a CI step summary's preview shows it), then the steps."""
    from loadtest.analysis.trend import format_step, format_value

    icon = "❌" if result["regressed"] else "✅"
    lines = [f"### {icon} {result['verdict'].upper()}: loadtest trend over "
             f"{len(result['runs'])} runs", "", _md(result["sentence"]), ""]  # fmt: skip
    lines += ["| metric | between | before → after | step | p |", "|---|---|--:|--:|--:|"]
    found = False
    for name, metric in result["metrics"].items():
        for step in metric["change_points"]:
            found = True
            lines.append(
                f"| `{name}` | {_md(step['before_run'])} \\| {_md(step['after_run'])} "
                f"| {format_value(name, step['mean_before'])} → "
                f"{format_value(name, step['mean_after'])} "
                f"| {format_step(name, step)} {'worse' if step['worse'] else 'better'} "
                f"| {step['p_value']:.2g} |"
            )
    if not found:
        lines = [*lines[:-2], "No change point in any headline metric."]
    runs = ", ".join(_md(run["name"]) for run in result["runs"])
    return "\n".join([*lines, "", f"<sub>runs, oldest first: {runs}</sub>", ""])


def render_json(result: dict[str, Any]) -> str:
    """``trend.json``: the whole result (``loadtest.trend/1``)."""
    return json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def _md(text: Any) -> str:
    """Run names are user input: keep them from changing the Markdown's structure."""
    flat = " ".join(str(text).split())
    for special in "\\`*_[]|<>":
        flat = flat.replace(special, "\\" + special)
    return flat
