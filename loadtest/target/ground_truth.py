"""The server's own record of what it did and when: one JSON object per line.

Times are ``time.perf_counter()`` seconds. On Linux that is CLOCK_MONOTONIC, one clock for every
process on the machine, so a client on the same host can subtract its own ``perf_counter()``
stamps directly. Lines are buffered in memory and written with one ``write`` per flush (at least
every second, and on exit). Every server process appends to the same file opened with
``O_APPEND``, so whole flushes never interleave mid-line.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

SCHEMA = "loadtest.target.ground_truth/1"
FLUSH_INTERVAL_S = 1.0


def truncate(path: Path) -> None:
    """Start a fresh file (done once, by the process that forks the servers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


class GroundTruthWriter:
    """Buffered JSON-lines appender for one server process.

    Args:
        path: the shared file; created if missing, appended to.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines: list[bytes] = []
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode

    def write(self, record: dict[str, object]) -> None:
        self._lines.append(self._dumps(record).encode() + b"\n")

    def flush(self) -> None:
        if not self._lines or self._fd < 0:
            return
        data = memoryview(b"".join(self._lines))
        self._lines.clear()
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    async def flush_periodically(self) -> None:
        """Run until cancelled, flushing every :data:`FLUSH_INTERVAL_S`."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self.flush()

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
