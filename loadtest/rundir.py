"""The run directory: where it goes and how its JSON files are written and read.

The run directory is the only thing running and reporting share (see ``../shared/CONTRACT.md``),
so its files are written atomically: a report never reads half a ``summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from loadtest.errors import UsageError

REPORTS_DIR = Path("reports")
#: The run's SLO file, kept in its run directory so that a report rebuilt later judges alike.
RUN_SLO_FILE = "slo.toml"


def default_run_dir(scenario: str, now: float | None = None) -> Path:
    """``reports/<UTC timestamp>-<scenario>``, unique even for runs started the same second."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    candidate = REPORTS_DIR / f"{stamp}-{scenario}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = REPORTS_DIR / f"{stamp}-{scenario}-{suffix}"
    return candidate


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and a rename, so readers see all of it or none."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    """Read one of the run directory's JSON files.

    Raises:
        UsageError: missing or not JSON (one line naming the file).
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (is this a run directory?)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable ({type(exc).__name__})") from None


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's ``summary.json``."""
    summary = read_json(run_dir / "summary.json")
    if not isinstance(summary, dict) or "metrics" not in summary:
        raise UsageError(f"{run_dir / 'summary.json'}: not a loadtest summary")
    return summary
