"""Server frames, pre-encoded: the JSON text of every frame the target sends, as bytes.

The constant parts (types, keys, the vocabulary of chunk words) are encoded once; a frame is then
a join of a few byte strings, with no ``json.dumps`` on the hot path. Key order follows the
guide's examples: ``type``, ``content``, id, ``timestamp``, ``metadata``.
"""

from __future__ import annotations

import json
import struct
import time
from datetime import UTC, datetime

OP_TEXT = 0x1
OP_BINARY = 0x2

_TEXT = (
    "I can help you with that! Let me create a personalized meal plan that fits your goals. "
    "A steady deficit of about five hundred calories a day leads to gradual, sustainable weight "
    "loss. Aim for protein at every meal, plenty of vegetables, and whole grains for lasting "
    "energy. Strength training two or three times a week preserves muscle while you lose fat. "
    "Walking after meals helps blood sugar and adds up over the week. Sleep seven to nine hours, "
    "drink water through the day, and track how you feel as well as the scale. Small changes "
    "you can keep beat big changes you abandon. Would you like a workout plan to go with it? "
)
WORDS: tuple[bytes, ...] = tuple(
    json.dumps(word + " ").encode() for word in _TEXT.split()
)

TEMPLATES: tuple[dict[str, str], ...] = (
    {"type": "meal", "name": "1800 Calorie Weight Loss Plan",
     "description": "Balanced meal plan for gradual weight loss"},
    {"type": "workout", "name": "Full Body Strength, 3 Days",
     "description": "Compound lifts three times a week"},
    {"type": "wellness", "name": "Evening Wind-Down",
     "description": "A sleep routine for better recovery"},
)


def ws_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One complete, final, unmasked server frame (RFC 6455 §5.2) ready for ``transport.write``."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


class IsoClock:
    """UTC ISO-8601 timestamps at one-second resolution, re-formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._text = stamp.encode()
        return self._text


class FrameEncoder:
    """Builds the frames of one server process.

    Args:
        id_key: ``message_id`` or ``messageId``: the id field name in outgoing frames.
    """

    def __init__(self, id_key: str) -> None:
        self.clock = IsoClock()
        self._id_key = id_key
        key = json.dumps(id_key).encode()
        self._id_open = b',' + key + b':"'
        self._ts_open = b'","timestamp":"'
        self._start = b'{"type":"ai_message_start"'
        self._chunk = b'{"type":"ai_message_chunk","content":'
        self._complete = b'{"type":"ai_message_complete"'
        self._oversized: dict[int, bytes] = {}

    def id_part(self, message_id: str) -> bytes:
        """The constant ``,"message_id":"ID","timestamp":"`` middle of one stream's frames.

        Server ids are ``[0-9a-z_]`` only, so no escaping is needed.
        """
        return self._id_open + message_id.encode() + self._ts_open

    def start(self, id_part: bytes) -> bytes:
        return b"".join((self._start, id_part, self.clock.now(), b'"}'))

    def chunk(self, id_part: bytes, word: int) -> bytes:
        return b"".join((self._chunk, WORDS[word % len(WORDS)], id_part, self.clock.now(), b'"}'))

    def complete(self, id_part: bytes) -> bytes:
        return b"".join((self._complete, id_part, self.clock.now(), b'"}'))

    def malformed_chunk(self, id_part: bytes, word: int) -> bytes:
        """A chunk cut off mid-way: not valid JSON."""
        return self.chunk(id_part, word)[:-7]

    def oversized_chunk(self, id_part: bytes, size: int) -> bytes:
        """A chunk whose content alone is ``size`` bytes (cached per size)."""
        content = self._oversized.get(size)
        if content is None:
            content = self._oversized.setdefault(size, b'"' + b"x" * size + b'"')
        return b"".join((self._chunk, content, id_part, self.clock.now(), b'"}'))

    def _dumps(self, frame: dict[str, object]) -> bytes:
        frame["timestamp"] = self.clock.now().decode()
        return json.dumps(frame, separators=(",", ":")).encode()

    def pong(self, message_id: object) -> bytes:
        """The answer to an app-level ping, echoing its id (whatever its JSON type)."""
        return self._dumps({"type": "pong", self._id_key: message_id})

    def error(self, message_id: object, code: str, content: str) -> bytes:
        """An ``error`` frame. ``content`` is the human text (as the guide reads it), ``code``
        a stable machine name; the id is the client's message id when the error answers one."""
        return self._dumps({"type": "error", "content": content, self._id_key: message_id,
                            "code": code})

    def template_created(self, message_id: str, template_id: str, index: int) -> bytes:
        metadata = {"template_id": template_id, **TEMPLATES[index % len(TEMPLATES)]}
        frame = {"type": "template_created", self._id_key: message_id, "timestamp": "",
                 "metadata": metadata}
        return self._dumps(frame)
