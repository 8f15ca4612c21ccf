"""``loadtest trend RUN_DIR…``: change points across a series of runs (nightlies), oldest first.

Thin: read the runs, call :func:`loadtest.analysis.trend.trend`, print, exit; the formats live
in :mod:`loadtest.report.trend_render`. The table is always printed (to stdout, or to stderr
when Markdown or JSON goes to stdout, so a pipe gets one clean document); ``--out DIR`` writes
``trend.md``, ``trend.json`` and ``trend.html`` there instead. A page needs ``--out``.

Exit codes: 0 the newest run is not in a worse segment · 2 bad input · 4 it is (a regression).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from loadtest.errors import UsageError

EXIT_OK, EXIT_REGRESSION = 0, 4


@click.command("trend")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", default="table", show_default=True,
              help="table, md, json, html (comma-separated); the table is always printed")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write trend.md / trend.json / trend.html here [default: print md and json; "
                   "html needs --out]")
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
    E-Divisive finds where the series stepped. Exit code: 0 ok, 2 bad input (also html without
    --out), 4 the newest run is in a segment worse than the one before by at least --threshold %.
    """
    from loadtest.analysis.trend import read_point, trend
    from loadtest.report.trend_render import TREND_RENDERERS, check_trend_formats

    wanted = check_trend_formats(formats.split(","))
    if out is None and "html" in wanted:
        raise UsageError("--format html writes trend.html: give --out DIR")
    if not 0.0 < max_pvalue < 1.0:
        raise UsageError(f"--pvalue must be between 0 and 1, not {max_pvalue}")
    if window_len < 2:
        raise UsageError(f"--window must be at least 2 runs, not {window_len}")
    if not math.isfinite(threshold_pct) or threshold_pct < 0:
        raise UsageError(f"--threshold must be a percentage >= 0, not {threshold_pct}")
    points = [read_point(run_dir) for run_dir in dict.fromkeys(run_dirs)]
    result = trend(points, threshold_pct=threshold_pct, max_pvalue=max_pvalue,
                   window_len=window_len)  # fmt: skip
    files = [name for name in wanted if name != "table"]
    printed = files if out is None else []
    click.echo(TREND_RENDERERS["table"](result)[1], err=bool(printed), nl=False)
    for name in printed:
        click.echo(TREND_RENDERERS[name](result)[1], nl=False)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name in files:
                filename, text = TREND_RENDERERS[name](result)
                (out / filename).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{out}: cannot write the trend ({exc.strerror or exc})") from exc
    sys.exit(EXIT_REGRESSION if result["regressed"] else EXIT_OK)
