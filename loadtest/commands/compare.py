"""``loadtest compare BASE_RUN… --candidate CAND_RUN…``: parse, call, print, exit code.

Imports nothing heavy at module level (``loadtest.cli`` imports this module to register the
command, and the Locust process must stay free of numpy-heavy analysis libraries); the
statistics live in :mod:`loadtest.analysis.compare`, the formats in
:mod:`loadtest.report.compare_render`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from loadtest.errors import UsageError

CANDIDATE = "--candidate"


def spread_candidates(args: Sequence[str]) -> list[str]:
    """Let one ``--candidate`` take several runs, as the contract writes it.

    ``--candidate c1 c2 --threshold 3`` becomes ``--candidate c1 --candidate c2 --threshold 3``:
    every argument after ``--candidate`` up to the next option (or ``--``) is a candidate. The
    repeated form (``--candidate c1 --candidate c2``) and ``--candidate=c1`` work too. Without
    this, click would take ``c2`` as one more *base* run, silently.
    """
    spread: list[str] = []
    taking = pending = False
    for arg in args:
        if arg == "--":
            taking = False
            spread.append(arg)
        elif arg == CANDIDATE:
            taking = True
            pending = True
            spread.append(arg)
            continue
        elif arg.startswith(f"{CANDIDATE}="):
            taking = True
            spread.append(arg)
        elif taking and not arg.startswith("-"):
            if not pending:
                spread.append(CANDIDATE)
            spread.append(arg)
        else:
            taking = False
            spread.append(arg)
        pending = False
    return spread


class _CompareCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_candidates(args))


def _list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    return items or None  # `--metrics ""`: the default


@click.command("compare", cls=_CompareCommand)
@click.argument("base_runs", nargs=-1, required=True, metavar="BASE_RUN…",
                type=click.Path(path_type=Path))
@click.option("--candidate", "candidate_runs", multiple=True, required=True,
              metavar="CAND_RUN…", type=click.Path(path_type=Path),
              help="the candidate's run directories (one option may take several)")
@click.option("--threshold", "threshold_pct", type=click.FloatRange(min=0), default=5.0,
              show_default=True, metavar="PCT",
              help="smallest change, in % of the base value, that counts")
@click.option("--format", "formats", default="table,md,json", show_default=True,
              help="table (always printed), md, json, html: written to --out as compare.md / "
                   "compare.json / compare.html; without --out, md and json named here are "
                   "printed (html needs --out)")
@click.option("--metrics", default=None, metavar="M1,M2",
              help="latency metrics and/or error_rate to compare [default: ttfc_ms, ttfs_ms, "
                   "stream_ms, inter_chunk_ms, connect_ms where every run has them; "
                   "error_rate]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="directory for compare.md, compare.json and compare.html")
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True,
              help="bootstrap resamples per run")
@click.option("--seed", type=int, default=None,
              help="bootstrap seed [default: fixed, so reruns give the same intervals]")
def compare_command(
    base_runs: tuple[Path, ...],
    candidate_runs: tuple[Path, ...],
    threshold_pct: float,
    formats: str,
    metrics: str | None,
    out: Path | None,
    resamples: int,
    seed: int | None,
) -> None:
    """Is the candidate slower than the baseline? Per metric and percentile: the delta with a
    95 % interval from resampling whole time windows (and, with several runs per side, from
    the spread between runs), and a verdict: improved, unchanged or regressed.

    Exit code: 0 nothing regressed, 2 bad input (also html without --out), 4 a regression.
    """
    from loadtest.analysis.compare import DEFAULT_SEED, compare_runs, exit_code
    from loadtest.report.compare_render import COMPARE_RENDERERS, check_compare_formats

    chosen = check_compare_formats(_list(formats) or [])
    if out is None and "html" in chosen:
        # A page is no use on a terminal; said before the resampling, not after it.
        raise UsageError("--format html writes compare.html: give --out DIR")
    document = compare_runs(
        list(base_runs),
        list(candidate_runs),
        threshold_pct=threshold_pct,
        metrics=_list(metrics),
        resamples=resamples,
        seed=DEFAULT_SEED if seed is None else seed,
    )
    click.echo(COMPARE_RENDERERS["table"](document)[1], nl=False)
    typed = click.get_current_context().get_parameter_source("formats")
    files = [name for name in chosen if name != "table"]
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name in files:
                filename, text = COMPARE_RENDERERS[name](document)
                _write_atomically(out / filename, text)
        except OSError as exc:
            raise UsageError(f"{out}: cannot write the comparison ({exc.strerror or exc})") from exc
    elif typed is click.core.ParameterSource.COMMANDLINE:
        for name in files:
            click.echo("\n" + COMPARE_RENDERERS[name](document)[1], nl=False)
    sys.exit(exit_code(document))


def _write_atomically(path: Path, text: str) -> None:
    """Via a temporary file and a rename, so a CI job never reads half a comparison."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
