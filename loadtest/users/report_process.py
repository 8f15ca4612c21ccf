"""At the end of a run, ``summary.json`` and the reports are made in a process of their own.

The load generator never imports pandas, matplotlib or the analysis code: after the load has
stopped it runs ``loadtest report RUN_DIR`` as a child and takes its exit code, which is the
run's (0 ok, 1 incomplete, 3 a check failed). Under ``loadtest run`` the child stays quiet
(``loadtest run`` prints the table itself); under plain ``locust -f`` it prints the table and
the verdict, so both ways end in the same decision.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from loadtest.analysis.slo_spec import SloSpec, load_slo  # pure: tomllib and our own names
from loadtest.auth.environment import ENV_API_KEY, TOKEN_SOURCE_ENV
from loadtest.rundir import RUN_SLO_FILE

#: Secrets the report has no use for: kept out of the child's environment.
_SECRET_ENV = (ENV_API_KEY, *TOKEN_SOURCE_ENV)
REPORT_TIMEOUT_S = 600


def keep_slo_file(path: str, run_dir: Path) -> SloSpec | None:
    """Check the ``--slo`` file now (a bad one fails the run at start) and keep a copy.

    Returns:
        The parsed file, or ``None`` without one.

    Raises:
        UsageError: the file is missing or does not parse (naming its line).
    """
    if not path:
        return None
    spec = load_slo(Path(path))
    shutil.copyfile(path, run_dir / RUN_SLO_FILE)
    return spec


def report_command(run_dir: Path, options: Any) -> list[str]:
    """The ``loadtest report`` command line for this run's options."""
    formats = str(getattr(options, "report_format", "") or "html,md,json")
    command = [sys.executable, "-m", "loadtest.cli", "report", str(run_dir), "--format", formats]
    if os.environ.get("LOADTEST_RUN_META"):  # under `loadtest run`, which prints the table
        command.append("--quiet")
    return command


def make_report(run_dir: Path, options: Any) -> int:
    """Run ``loadtest report`` on the finished run directory; its exit code is the run's."""
    env = {name: value for name, value in os.environ.items() if name not in _SECRET_ENV}
    try:
        done = subprocess.run(report_command(run_dir, options), env=env, timeout=REPORT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"loadtest: error: the report of {run_dir} failed: {exc}", file=sys.stderr,
              flush=True)  # fmt: skip
        return 1
    return done.returncode
