"""``loadtest``: run, serve, report. Thin: parse, call, map errors to exit codes.

Exit codes (``../shared/CONTRACT.md``): 0 ok · 1 the tool failed · 2 bad usage or input ·
3 an SLO failed · 4 compare found a regression.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from loadtest import __version__
from loadtest.auth.environment import (
    ENV_API_KEY,
    ENV_JWT_SECRET,
    ENV_LOGIN_FILE,
    ENV_TOKEN,
    ENV_TOKENS_FILE,
    TOKEN_SOURCE_OPTIONS,
    TokenChoice,
    choose_token_source,
)
from loadtest.errors import LoadtestError, UsageError
from loadtest.rundir import RUN_SLO_FILE
from loadtest.timespan import timespan_seconds

EXIT_OK, EXIT_TOOL_FAILED, EXIT_USAGE = 0, 1, 2


class LoadtestGroup(click.Group):
    """Turns our errors into one line on stderr and the contract's exit code, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoadtestError as exc:
            click.echo(f"loadtest: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # bad options: one line too, not click's three
            command = exc.ctx.command_path if exc.ctx else "loadtest"
            hint = f" (see: {command} --help)"
            click.echo(f"loadtest: error: {exc.format_message()}{hint}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=LoadtestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="loadtest")
def main() -> None:
    """Load and soak testing for streaming WebSocket chat APIs."""


def _timespan(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # Zero is refused: Locust takes a zero run time as "no limit", and a load test that never
    # stops is not what anyone typing ``0m`` meant.
    if timespan_seconds(value) <= 0:
        raise click.BadParameter(f"{value!r} is not a positive duration like 90s, 10m, 1h30m")
    return value




def _formats(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _optional_timespan(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> int | None:
    if value is None:
        return None
    seconds = timespan_seconds(value)
    if seconds <= 0 and value.strip() not in {"0", "0s"}:
        raise click.BadParameter(f"{value!r} is not a duration like 30s, 2m")
    return seconds


@main.command("run", context_settings={"ignore_unknown_options": False})
@click.argument("scenario", required=False)
@click.option("--host", help="target base URL (ws://, wss://, http://, https://); "
                             "absent: start the embedded reference target on 127.0.0.1")
@click.option("-u", "--users", type=click.IntRange(min=1), default=10, show_default=True,
              help="concurrent conversations (closed model)")
@click.option("-r", "--spawn-rate", type=click.FloatRange(min=0, min_open=True),
              help="users started per second [default: all at once]")
@click.option("-t", "--duration", default="60s", show_default=True, callback=_timespan,
              help="run time in Locust syntax: 90s, 10m, 2h")
@click.option("--arrival-rate", type=click.FloatRange(min=0, min_open=True),
              help="open model: new conversations per second (instead of --users); "
                   "default scenario: arrival")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Locust worker processes on this machine (0: one process)")
@click.option("--api-key", envvar=ENV_API_KEY, show_envvar=True,
              help="sent as X-API-Key")
@click.option("--token", envvar=ENV_TOKEN, show_envvar=True,
              help="one static JWT for every user")
@click.option("--tokens-file", type=click.Path(dir_okay=False), envvar=ENV_TOKENS_FILE,
              show_envvar=True, help="JWTs, one per line, round-robin over users")
@click.option("--jwt-secret", envvar=ENV_JWT_SECRET, show_envvar=True,
              help="mint an HS256 JWT per user with this secret")
@click.option("--login-file", type=click.Path(dir_okay=False), envvar=ENV_LOGIN_FILE,
              show_envvar=True, help="email,password per line: log each user in")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="run directory [default: reports/<UTC>-<scenario>]")
@click.option("--target-args", default="", metavar="'ARGS'",
              help="options for the embedded target, e.g. '--profile fixed --ttfc-ms 50'")
@click.option("--slo", type=click.Path(dir_okay=False, path_type=Path),
              help="SLO file (TOML) to judge the run by; exit 3 when a check fails")
@click.option("--warmup", default="0", callback=_optional_timespan,
              help="leave the first D after the ramp out of the headline metrics (30s, 2m)")
@click.option("--format", "formats", default="html,md,json", show_default=True,
              help="reports written into the run directory: html, md, json, junit")
@click.argument("locust_args", nargs=-1, type=click.UNPROCESSED)
def run_command(
    scenario: str | None,
    host: str | None,
    users: int,
    spawn_rate: float | None,
    duration: str,
    arrival_rate: float | None,
    workers: int,
    api_key: str | None,
    token: str | None,
    tokens_file: str | None,
    jwt_secret: str | None,
    login_file: str | None,
    out: Path | None,
    target_args: str,
    slo: Path | None,
    warmup: int | None,
    formats: str,
    locust_args: tuple[str, ...],
) -> None:
    """Run SCENARIO (a locustfile or a name in scenarios/; default: chat) and print percentiles.

    Anything after `--` goes to Locust unchanged, e.g. `-- --think-time 0.5-1`.
    """
    from loadtest.analysis.gate import EXIT_BY_SIGNAL, exit_code
    from loadtest.launch import RunRequest, run, tail
    from loadtest.report.table import render_percentile_table
    from loadtest.report.verdict import render_verdict
    from loadtest.rundir import read_summary
    from loadtest.session import Endpoints

    if scenario is not None and scenario.startswith("-"):
        locust_args, scenario = (scenario, *locust_args), None  # `run -- --flag …`
    if host:
        Endpoints.from_base_url(host)  # a bad URL is a usage error before anything starts
    choice = _one_token_source(
        click.get_current_context(), token, tokens_file, jwt_secret, login_file
    )
    if target_args and not host and SECRET_TARGET_ARGS.search(target_args):
        raise UsageError(
            "give the embedded target's secrets with --jwt-secret / --api-key (or their "
            "environment variables), not in --target-args: the users need them too"
        )
    if arrival_rate is not None and _given(click.get_current_context(), "users"):
        raise UsageError("--arrival-rate sets the load itself: leave out -u/--users")
    secrets = {ENV_API_KEY: api_key} if api_key else {}  # and at most one token source
    if choice is not None:
        secrets.update(choice.environment())
    if arrival_rate is not None:
        users = max(1, workers)  # one arrival driver per process; each runs rate / users
        spawn_rate = float(users)
    judged: tuple[str, ...] = ("--warmup", f"{warmup or 0}s", "--report-format", formats)
    if slo is not None:
        from loadtest.analysis.slo_spec import load_slo

        load_slo(slo)  # a bad file is a usage error now, not after the run
        judged += ("--slo", str(slo.resolve()))
    from loadtest.report.renderers import check_formats

    check_formats(_formats(formats))
    request = RunRequest(
        scenario=scenario,
        host=host,
        users=users,
        arrival_rate=arrival_rate,
        spawn_rate=spawn_rate,
        duration=duration,
        workers=workers,
        out=out,
        secrets=secrets,
        target_args=target_args,
        locust_args=judged + locust_args,
    )
    code, run_dir = run(request)
    if code == EXIT_USAGE:
        sys.exit(EXIT_USAGE)
    if not (run_dir / "summary.json").exists():
        click.echo(tail(run_dir / "locust.log"), err=True)
        raise LoadtestError(f"Locust exited ({code}) without a summary; see {run_dir}/locust.log")
    summary = read_summary(run_dir)
    click.echo(render_percentile_table(summary))
    verdict = render_verdict(summary)
    if verdict:
        click.echo("\n" + verdict)
    click.echo(f"\nrun directory: {run_dir}")
    generator = summary.get("generator") or {}
    if generator.get("saturated"):
        click.echo(
            "loadtest: warning: the load generator was saturated in "
            f"{len(generator.get('saturated_windows', []))} window(s); latency figures from "
            "them include the generator's own queueing",
            err=True,
        )
    counts = summary["counts"]
    idle_run = counts.get("connections_opened") and not counts.get("streams_started")
    if not counts.get("streams_completed") and not idle_run and not summary.get("stopped"):
        click.echo(
            "loadtest: warning: no stream completed; is the target up and are the credentials "
            "right? (see connection_failures, rest_failures and locust.log)",
            err=True,
        )
    # Interrupted: our own knowledge of the signal wins (the summary may predate it).
    sys.exit(code if code in EXIT_BY_SIGNAL.values() else exit_code(summary))


SECRET_TARGET_ARGS = re.compile(r"--(jwt-secret|api-key)\b")
def _given(ctx: click.Context, name: str) -> bool:
    """Whether an option was typed on the command line (not a default, not the environment)."""
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _one_token_source(ctx: click.Context, *values: str | None) -> TokenChoice | None:
    """At most one source of JWTs, by the one rule (:func:`choose_token_source`): one typed on
    the command line overrides any coming from the environment (a stale
    ``LOADTEST_JWT_SECRET`` must not block ``--tokens-file``); empty environment values count
    as unset.

    Click has already merged the environment into ``values``; only the typed ones are passed
    on as typed, and the rule reads the environment itself.

    Raises:
        UsageError: two typed, or none typed and two in the environment.
    """
    typed = {
        option.name: value
        for option, value in zip(TOKEN_SOURCE_OPTIONS, values, strict=True)
        if _given(ctx, option.name)
    }
    return choose_token_source(typed, os.environ)


@main.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "formats", default="html,md,json", show_default=True,
              help="reports to write: html, md, json, junit (comma-separated)")
@click.option("--slo", type=click.Path(dir_okay=False, path_type=Path),
              help=f"SLO file (TOML) [default: the run's own {RUN_SLO_FILE}, if any]")
@click.option("--warmup", callback=_optional_timespan,
              help="leave the first D after the ramp out of the headline metrics "
                   "[default: the run's own --warmup]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="where the reports go [default: RUN_DIR]")
@click.option("--quiet", is_flag=True, help="print nothing but errors (the exit code decides)")
def report_command(
    run_dir: Path,
    formats: str,
    slo: Path | None,
    warmup: int | None,
    out: Path | None,
    quiet: bool,
) -> None:
    """Rebuild summary.json and the reports of RUN_DIR from its raw files alone.

    Exit code: 0 every check passed, 1 the run is incomplete, 3 a check failed or was
    inconclusive, 130 / 143 the run was interrupted.
    """
    from loadtest.analysis.gate import exit_code
    from loadtest.report.rebuild import rebuild
    from loadtest.report.table import render_percentile_table
    from loadtest.report.verdict import render_verdict

    if not (run_dir / "run.json").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no run.json)")
    if slo is None and (run_dir / RUN_SLO_FILE).is_file():
        slo = run_dir / RUN_SLO_FILE
    summary = rebuild(run_dir, formats=_formats(formats), slo=slo, warmup_s=warmup, out=out)
    if not quiet:
        click.echo(render_percentile_table(summary), err=True)
        click.echo("\n" + render_verdict(summary), err=True)
    sys.exit(exit_code(summary))


@main.command("scenarios")
def scenarios_command() -> None:
    """The shipped scenarios: what each answers and how to run it."""
    from loadtest.launch import shipped_scenarios

    for name, summary, usage in shipped_scenarios():
        click.echo(f"{name:<10} {summary}")
        if usage:
            click.echo(f"{'':<10}   {usage}")
    click.echo("\noptions of every scenario: loadtest run NAME -- --help (Locust's, ours under "
               "'loadtest'); docs: scenarios/README.md")  # fmt: skip


def _attach_serve() -> None:
    try:
        from loadtest.target.command import serve
    except ImportError:  # the target package is optional at import time of the CLI only
        return
    main.add_command(serve)


_attach_serve()

from loadtest.commands.trend import trend_command as _trend; main.add_command(_trend)  # noqa: E402, E702, I001
from loadtest.commands.compare import compare_command as _compare; main.add_command(_compare)  # noqa: E402, E702, I001


if __name__ == "__main__":
    main()
