"""Launch one load-test run: the embedded target if needed, then Locust, then wait.

Locust runs in its own process (``python -m locust``), exactly as a user would run it, with
``--processes N`` for local workers, so ``loadtest run`` adds nothing Locust users would not
recognise. Secrets travel to it by environment only. Its console output goes to
``<run>/locust.log``; the lines we print ourselves (``[loadtest] …``) are echoed live.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from loadtest.analysis.gate import EXIT_BY_SIGNAL
from loadtest.auth.environment import (
    ENV_API_KEY,
    ENV_JWT_SECRET,
    TOKEN_SOURCE_ENV,
    choose_token_source,
    without_token_sources,
)
from loadtest.child_process import die_with_parent
from loadtest.errors import UsageError
from loadtest.rundir import default_run_dir

PACKAGE_ROOT = Path(__file__).resolve().parent
SCENARIO_DIRS = (Path("scenarios"), PACKAGE_ROOT.parent / "scenarios")
DEFAULT_SCENARIO = "chat"
ARRIVAL_SCENARIO = "arrival"
ECHO_PREFIXES = ("[loadtest]", "loadtest: error")
#: Locust's own argument errors (argparse names it after ``python -m``: ``__main__.py``).
LOCUST_USAGE_ERROR = re.compile(r"^(?:__main__\.py|locust): error: ")


@dataclass(frozen=True)
class RunRequest:
    """Everything ``loadtest run`` was asked for."""

    scenario: str | None = None
    host: str | None = None
    users: int = 10
    spawn_rate: float | None = None
    duration: str = "60s"
    workers: int = 0
    #: Open model: conversations per second across the run (instead of ``users``).
    arrival_rate: float | None = None
    out: Path | None = None
    #: Secrets: only ever passed on by environment.
    secrets: Mapping[str, str] = field(default_factory=dict)
    target_args: str = ""
    locust_args: Sequence[str] = ()


def resolve_scenario(name: str | None) -> Path:
    """A locustfile path, or the name of a shipped scenario (``chat``, ``churn`` …).

    Raises:
        UsageError: nothing by that name.
    """
    wanted = name or DEFAULT_SCENARIO
    path = Path(wanted)
    if path.is_file():
        return path
    for folder in SCENARIO_DIRS:
        candidate = folder / (wanted if wanted.endswith(".py") else f"{wanted}.py")
        if candidate.is_file():
            return candidate
    raise UsageError(f"no scenario {wanted!r}: give a locustfile path or a name in scenarios/")


def shipped_scenarios() -> list[tuple[str, str, str]]:
    """``(name, what it answers, an example command)`` of each shipped scenario, from the
    scenario's own docstring (its first line, and its first ``loadtest run`` line)."""
    import ast

    found: dict[str, tuple[str, str, str]] = {}
    for folder in SCENARIO_DIRS:
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else ():
            if path.stem.startswith("_") or path.stem in found:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            lines = [line.strip() for line in doc.splitlines()]
            usage = next((line for line in lines if line.startswith("loadtest run")), "")
            found[path.stem] = (path.stem, lines[0] if lines else "", usage)
    return [found[name] for name in sorted(found)]


def locust_command(request: RunRequest, scenario: Path, host: str, out: Path) -> list[str]:
    """The ``python -m locust`` command line for this run (no secrets on it)."""
    command = [
        sys.executable, "-m", "locust",
        "-f", str(scenario),
        "--headless",
        "--host", host,
        "-u", str(request.users),
        "-r", str(request.spawn_rate if request.spawn_rate is not None else request.users),
        "-t", request.duration,
        "--loadtest-out", str(out),
        "--loadtest-scenario", scenario.stem,
        "--stop-timeout", "0",  # in flight at -t: cancelled, not timed through tear-down
    ]  # fmt: skip
    if request.arrival_rate is not None:
        command += ["--arrival-rate", str(request.arrival_rate)]
    if request.workers:
        command += ["--processes", str(request.workers)]
    return command + list(request.locust_args)


@contextlib.contextmanager
def embedded_target(
    request: RunRequest, env: dict[str, str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """Start the reference target unless ``--host`` names one; yield the URL and user env.

    With no secrets given, a random JWT secret and API key are made for this run only, shared
    with the target and the users through the environment, and never written anywhere.
    """
    if request.host:
        yield request.host, env
        return
    from loadtest.target.process import TargetProcess

    env = dict(env)
    target_env = {
        ENV_JWT_SECRET: env.get(ENV_JWT_SECRET) or secrets.token_urlsafe(32),
        ENV_API_KEY: env.get(ENV_API_KEY) or secrets.token_urlsafe(16),
    }
    env[ENV_API_KEY] = target_env[ENV_API_KEY]
    chosen = choose_token_source(environ=env)
    if chosen is None or chosen.name == "jwt_secret":
        # Users mint their tokens with the target's secret, unless told to get them otherwise
        # (a login file works against the target; a static token or file must match it).
        env[ENV_JWT_SECRET] = target_env[ENV_JWT_SECRET]
    try:
        args = shlex.split(request.target_args)
    except ValueError as exc:
        raise UsageError(f"--target-args: {exc}") from None
    with TargetProcess(args, env=target_env) as target:
        yield target.base_url, env


def run(request: RunRequest, echo: TextIO = sys.stderr) -> tuple[int, Path]:
    """Run Locust to completion and return (its exit code, the run directory).

    Locust runs in a session of its own: the first SIGINT or SIGTERM we get is passed to its
    process group, which stops the users and still writes the run directory while we wait;
    the exit code is then 130 / 143. A second one kills it and exits at once.

    Raises:
        UsageError: bad scenario or options.
        LoadtestError: the embedded target would not start.
    """
    default = ARRIVAL_SCENARIO if request.arrival_rate is not None else DEFAULT_SCENARIO
    scenario = resolve_scenario(request.scenario or default)
    out = request.out or default_run_dir(scenario.stem)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if any(name in request.secrets for name in TOKEN_SOURCE_ENV):
        env = without_token_sources(env)  # the chosen source replaces any in the environment
    env.update(request.secrets)
    env["PYTHONUNBUFFERED"] = "1"
    with embedded_target(request, env) as (host, child_env):
        meta = {"target_embedded": request.host is None, "target_args": request.target_args}
        child_env["LOADTEST_RUN_META"] = json.dumps(meta)
        command = locust_command(request, scenario, host, out)
        load = _load_phrase(request)
        print(
            f"[loadtest] {scenario.stem}: {load} for {request.duration} "
            f"against {host}{' (embedded target)' if request.host is None else ''} → {out}",
            file=echo,
            flush=True,
        )
        code = _run_locust(command, child_env, out / "locust.log", echo)
    return code, out


def _load_phrase(request: RunRequest) -> str:
    """``10 users``, ``4 arrivals/s`` or, for a step load, ``steps 2,4,8 users``."""
    args = list(request.locust_args)
    for flag, unit in (("--steps", "users"), ("--rate-steps", "arrivals/s")):
        if flag in args[:-1]:
            return f"steps {args[args.index(flag) + 1]} {unit}"
    if request.arrival_rate is not None:
        return f"{request.arrival_rate:g} arrivals/s"
    return f"{request.users} users"


def _run_locust(command: list[str], env: Mapping[str, str], log_path: Path, echo: TextIO) -> int:
    from loadtest.redaction import Redactor

    # The last line of defence: Locust's process scrubs its log records itself, but not what
    # is printed straight to its stdout or stderr (gevent's tracebacks, warnings, print()).
    # Everything it writes passes here, so scrub each line before it reaches a file or screen.
    redactor = Redactor.from_environment(env)
    process = subprocess.Popen(
        command,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        start_new_session=True,  # signals reach Locust from us only, once each
        preexec_fn=die_with_parent,
    )
    interrupts: list[str] = []

    def forward(signum: int, _frame: object) -> None:
        """The first SIGINT / SIGTERM goes to Locust's whole group (its workers too), which
        stops and writes the run directory; a second one ends everything at once."""
        interrupts.append(signal.Signals(signum).name)
        if len(interrupts) == 1:
            _signal_group(process, signum)
            return
        _signal_group(process, signal.SIGKILL)
        echo.write(f"[loadtest] interrupted again: stopped at once; {log_path.parent} may be "
                   "incomplete\n")  # fmt: skip
        echo.flush()
        raise SystemExit(EXIT_BY_SIGNAL.get(interrupts[0], 130))

    previous_int = signal.signal(signal.SIGINT, forward)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        assert process.stdout is not None
        with log_path.open("w") as log:
            for raw in process.stdout:
                line = redactor.scrub(raw)
                log.write(line)
                if line.startswith(ECHO_PREFIXES):
                    echo.write(line)
                    echo.flush()
                elif LOCUST_USAGE_ERROR.match(line):
                    echo.write("loadtest: error: " + LOCUST_USAGE_ERROR.sub("", line))
                    echo.flush()
        code = process.wait()
        if interrupts and code not in EXIT_BY_SIGNAL.values():
            code = EXIT_BY_SIGNAL.get(interrupts[0], 130)
        return code
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        if process.poll() is None:
            process.kill()


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


__all__ = ["RunRequest", "resolve_scenario", "run"]
