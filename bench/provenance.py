"""Where a benchmark figure came from: commit, library versions, machine, date, repeats.

Every result JSON under ``bench/results/`` carries a ``provenance`` block made here, so a figure
can be traced to the code and machine that produced it, and a reader can tell a one-shot number
from the median of several. Only the standard library (plus ``git`` if present): importing this
must never change what is measured.

    from provenance import provenance, repeats   # bench/ is sys.path[0] for bench scripts
    record = {"benchmark": "...", "provenance": provenance(["websockets", "gevent"]), ...}
    record["chunks_per_cpu_s"] = repeats([14100, 14350, 13900])
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Libraries whose version moves the hot path; each benchmark may name more.
DEFAULT_LIBRARIES = ("loadtest", "websockets", "gevent", "greenlet", "locust")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


#: Tracked files that cannot change what is measured: results (a benchmark run after another
#: finds the first one's file rewritten) and prose.
NOT_MEASURED = (":!bench/results", ":!docs", ":!*.md")


def commit() -> dict[str, Any]:
    """The checked-out commit and whether tracked files that can change a measurement (code,
    benchmarks, configuration: not ``NOT_MEASURED``) differ from it (a dirty tree's figure
    belongs to no commit exactly, and says so)."""
    head = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_MEASURED)
    return {"sha": head, "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed distribution versions; ``None`` for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_ticks() -> tuple[int, int] | None:
    """(all, stolen) CPU time of every core so far, in ticks (``/proc/stat``), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if fields[:1] != ["cpu"] or len(fields) < 9:
        return None
    ticks = [int(value) for value in fields[1:]]
    # guest and guest_nice (fields 9, 10) are already counted in user and nice.
    return sum(ticks[:8]), ticks[7]


_TICKS_AT_IMPORT = _cpu_ticks()
_IMPORTED_AT = time.monotonic()


def stolen_share() -> dict[str, Any] | None:
    """How much CPU time the hypervisor took from this machine since the benchmark started
    (this module's import) until now: ``steal`` of ``/proc/stat``, as a share of all CPU
    time. On a shared virtual machine it is what moves figures from one hour to the next
    (timers firing late, a core lost mid-window); None where the kernel does not say."""
    now = _cpu_ticks()
    if now is None or _TICKS_AT_IMPORT is None or now[0] <= _TICKS_AT_IMPORT[0]:
        return None
    return {
        "since_start_s": round(time.monotonic() - _IMPORTED_AT, 1),
        "share": round((now[1] - _TICKS_AT_IMPORT[1]) / (now[0] - _TICKS_AT_IMPORT[0]), 4),
    }


def machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "load_average_at_start": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def provenance(libraries: Iterable[str] = ()) -> dict[str, Any]:
    """The provenance block of a result file.

    Args:
        libraries: distributions to report besides :data:`DEFAULT_LIBRARIES`.
    """
    names = list(dict.fromkeys([*DEFAULT_LIBRARIES, *libraries]))
    return {
        "commit": commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "libraries": library_versions(names),
    }


def write_result(path: Path, record: dict[str, Any]) -> None:
    """Write a result file, its provenance completed with what is known only at the end: the
    CPU time stolen from the machine while the benchmark ran (:func:`stolen_share`)."""
    record["provenance"]["machine"]["cpu_time_stolen"] = stolen_share()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def repeats(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Every repeat and their min / median / max (the spread is part of the figure).

    Raises:
        ValueError: no values.
    """
    if not values:
        raise ValueError("repeats() needs at least one value")
    return {
        "n": len(values),
        "values": [round(value, digits) for value in values],
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }
