"""Reading the files secrets come in (tokens, logins): once, at start, with line numbers.

Line numbers matter because the lines themselves are secret: an error names ``file:line``,
never the content.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.errors import UsageError


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines of a text file, stripped, with their 1-based numbers.

    Args:
        path: the file.
        what: how errors name it (``"tokens file"``).

    Raises:
        UsageError: the file is missing or unreadable.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read {what} {path}: {reason}") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append((number, stripped))
    return lines
