"""Every report format behind one interface, and the one function that writes them.

A renderer is a pure function ``ReportInput → (filename, content)``, like k6's outputs: adding a
format is one module and one line in :data:`RENDERERS`, and no renderer knows where its bytes
go. :func:`write_reports` does the I/O, each file through a temporary file and a rename, so a
crash or a full disk never leaves a half-written report where a CI job would read it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from loadtest.errors import UsageError
from loadtest.report.html_report import render_html
from loadtest.report.json_report import render_json
from loadtest.report.junit import render_junit
from loadtest.report.markdown import render_markdown
from loadtest.report.model import ReportInput

Renderer = Callable[[ReportInput], tuple[str, str | bytes]]
"""Takes the report input, returns the file name and its content (``str`` is written UTF-8)."""

RENDERERS: Mapping[str, Renderer] = MappingProxyType(
    {
        "html": render_html,
        "md": render_markdown,
        "json": render_json,
        "junit": render_junit,
    }
)
"""``--format`` name → renderer."""

DEFAULT_FORMATS: tuple[str, ...] = ("html", "md", "json")
"""What ``loadtest report`` and the end of ``loadtest run`` write without ``--format``."""


def check_formats(formats: Sequence[str]) -> list[str]:
    """The formats, stripped and without repeats, in the order given.

    Raises:
        UsageError: a format is not in :data:`RENDERERS`; the message names it and the known.
    """
    chosen: list[str] = []
    for name in formats:
        name = name.strip()
        if name not in RENDERERS:
            known = ", ".join(sorted(RENDERERS))
            raise UsageError(f"unknown report format {name!r} (known: {known})")
        if name not in chosen:
            chosen.append(name)
    return chosen


def write_reports(report: ReportInput, formats: Sequence[str], out_dir: Path) -> list[Path]:
    """Render each format and write it into ``out_dir``.

    Every format is checked before anything is rendered, so a typo in ``--format`` writes
    nothing rather than some of the reports.

    Args:
        report: the report input.
        formats: format names (``html``, ``md``, ``json``, ``junit``).
        out_dir: the directory (created if missing), usually the run directory.

    Returns:
        The written paths, in the order of ``formats``.

    Raises:
        UsageError: an unknown format, or ``out_dir`` cannot be written.
    """
    chosen = check_formats(formats)
    out_dir = Path(out_dir)
    written: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            filename, content = RENDERERS[name](report)
            data = content.encode("utf-8") if isinstance(content, str) else content
            written.append(_write_atomically(out_dir / filename, data))
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write reports ({exc.strerror or exc})") from exc
    return written


def _write_atomically(path: Path, data: bytes) -> Path:
    # Same directory, so the rename never crosses a file system and is atomic.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
