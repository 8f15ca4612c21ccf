"""Random ids and WebSocket masking keys from the OS, drawn a batch at a time.

``uuid.uuid4()`` and websockets' ``secrets.token_bytes(4)`` (a client frame's masking key)
each make one ``getrandom`` system call: two per stream, ~1-2 µs each on a virtual machine.
Here one call serves 256 ids or 1,024 keys. The bytes are the same ``os.urandom`` bytes,
so keys stay as unpredictable as RFC 6455 §5.3 asks; a forked child starts a fresh batch, so
no two processes hand out the same id.
"""

from __future__ import annotations

import os
from typing import Final

BATCH_BYTES: Final = 4096


class RandomPool:
    """Bytes of ``os.urandom``, fetched ``BATCH_BYTES`` at a time and never handed out twice."""

    __slots__ = ("_batch", "_position")

    def __init__(self) -> None:
        self._batch = b""
        self._position = 0

    def take(self, n: int) -> bytes:
        """The next ``n`` random bytes (``n`` ≤ ``BATCH_BYTES``)."""
        start = self._position
        end = start + n
        if end > len(self._batch):
            self._batch = os.urandom(max(BATCH_BYTES, n))
            start, end = 0, n
        self._position = end
        return self._batch[start:end]

    def forget(self) -> None:
        """Drop what is left of the batch (a forked child must not repeat its parent)."""
        self._batch = b""
        self._position = 0


_POOL: Final = RandomPool()
os.register_at_fork(after_in_child=_POOL.forget)


def random_id() -> str:
    """32 random hex digits, as ``uuid.uuid4().hex`` gives (122 random bits there, 128 here)."""
    return _POOL.take(16).hex()


def mask_key() -> bytes:
    """Four random bytes: the masking key of one client frame."""
    return _POOL.take(4)
