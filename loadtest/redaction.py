"""Keep secrets out of output: logs, consoles and ``locust.log``.

A load generator holds API keys, JWT secrets, login passwords and a token per user, and the
libraries under it are chatty at DEBUG: the ``websockets`` client logs its request line (with
``?token=…``) and every request header (``X-API-Key``). Two kinds of secrets are scrubbed:

* **known** ones, read from the environment that carries them to every Locust process
  (``LOADTEST_API_KEY``, ``LOADTEST_TOKEN``, ``LOADTEST_JWT_SECRET``, each line of
  ``LOADTEST_TOKENS_FILE``, each password of ``LOADTEST_LOGIN_FILE``), matched literally;
* **shaped** ones, made at run time (minted or logged-in tokens): anything that looks like a
  JWT, the value of a ``token=`` / ``api_key=`` / ``password=`` parameter, the value of an
  ``X-API-Key`` / ``Authorization`` / ``Cookie`` header, and the JSON value of keys such as
  ``"password"``, ``"access_token"``, ``"refresh_token"``, and the password in a URL.

Each is replaced by :data:`REDACTED`. :func:`install_log_redaction` makes every log record of
the process scrub itself when a handler formats it, whichever handler that is and whenever it
was created. :func:`scrub_console` covers what is written without ``logging`` (``print``,
gevent's and Python's tracebacks, warnings), and :meth:`Redactor.scrub` any other text, such as
a child process's output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loadtest.auth.environment import (
    ENV_API_KEY,
    ENV_JWT_SECRET,
    ENV_LOGIN_FILE,
    ENV_TOKEN,
    ENV_TOKENS_FILE,
)

REDACTED = "<redacted>"

#: Known secrets shorter than this are left to the shape patterns: scrubbing a three-letter
#: password everywhere it occurs as a substring would shred the log without protecting much.
MIN_SECRET_CHARS = 4

# base64url header and payload of a JWT: '{"' encodes as 'eyJ'. The signature may be empty
# (alg "none"), so it is optional, but the two dots are not.
_JWT = r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"

# Names whose value is a secret. ``[_-]?`` because HTTP spells X-API-Key, JSON api_key.
_SECRET_NAMES = (
    r"(?:access[_-]?|refresh[_-]?|id[_-]?|auth[_-]?|x[_-]auth[_-]|x[_-]access[_-])?token"
    r"|(?:x[_-])?api[_-]?key|apikey|access[_-]?key"
    r"|password|passwd|pwd|(?:client[_-]|jwt[_-])?secret"
    r"|(?:proxy[_-])?authorization|cookie|set[_-]cookie"
)

# "name": "value" or 'name': 'value' (JSON, Python reprs of dicts), and ('name', 'value')
# (header lists, e.g. websockets' Headers repr).
_QUOTED_PAIR = (
    rf"(?P<qk>[\"'])(?P<qname>{_SECRET_NAMES})(?P=qk)\s*[:,]\s*"
    r"(?P<qv>[\"'])(?P<qval>(?:\\.|(?!(?P=qv))[^\\\r\n])*)(?P=qv)"
)
# name=value in a query string, a form body or key=value logging; the name may carry a prefix
# (my_token=) but not be a longer word's middle. '<' ends a value so REDACTED is left alone.
_PARAM = (
    rf"(?P<pname>(?<![\w-])[\w.-]*?(?:{_SECRET_NAMES}))=[\"']?"
    r"(?P<pval>[^&\s#\"'<>,;)\]}]+)"
)
# Name: value, as a header line: the value runs to the end of the line ("Bearer x" included).
_HEADER = rf"(?P<hname>(?<![\w-])(?:{_SECRET_NAMES}))[ \t]*:[ \t]*(?![\"'\s])(?P<hval>[^\r\n]+)"

# The password of a URL's user info: wss://user:password@host.
_USERINFO = r"(?<=://)[^/\s:@]+:(?P<uval>[^@\s/]+)(?=@)"

_SHAPES = re.compile(rf"(?P<jwt>{_JWT})|{_QUOTED_PAIR}|{_PARAM}|{_HEADER}|{_USERINFO}",
                     re.IGNORECASE)
# Every shape contains one of these (lowercased), a JWT's "eyJ" or a URL's "://". Looking for
# them first costs about 1 µs a line where the patterns cost 50: websockets logs every frame
# at DEBUG, and almost none of those lines names a secret.
_SHAPE_HINTS = ("token", "key", "passw", "pwd", "secret", "authori", "cookie", "://")


def _replace_shape(match: re.Match[str]) -> str:
    """Keep the name (so a reader knows what was there), drop the value."""
    if match.group("jwt") is not None:
        return REDACTED
    for value in ("qval", "pval", "hval", "uval"):
        if match.group(value) is not None:
            start, end = match.span(value)
            whole = match.group(0)
            offset = match.start(0)
            return whole[: start - offset] + REDACTED + whole[end - offset :]
    return match.group(0)  # pragma: no cover - every alternative names a value group


class Redactor:
    """Replaces secrets in text by :data:`REDACTED`.

    Args:
        secrets: known secret values, matched literally (also in their URL- and
            JSON-escaped spellings). Empty and very short values are ignored (see
            :data:`MIN_SECRET_CHARS`); JWT-shaped ones are caught by shape anyway.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Also scrub these values from now on (e.g. an opaque token fetched at run time)."""
        before = len(self._known)
        for secret in secrets:
            secret = (secret or "").strip()
            if len(secret) < MIN_SECRET_CHARS or secret in REDACTED or re.fullmatch(_JWT, secret):
                continue  # too short; would scrub the marker itself; caught by shape anyway
            self._known.add(secret)
            self._known.add(urllib.parse.quote(secret, safe=""))
            self._known.add(urllib.parse.quote_plus(secret))
            self._known.add(json.dumps(secret)[1:-1])
        if len(self._known) != before:
            # Longest first, so a secret that contains another is removed whole.
            alternatives = sorted(self._known, key=len, reverse=True)
            self._literal = re.compile("|".join(map(re.escape, alternatives)))

    def __len__(self) -> int:
        return len(self._known)

    def scrub(self, text: str) -> str:
        """``text`` with every known and every shaped secret replaced by :data:`REDACTED`.

        Idempotent: scrubbing scrubbed text changes nothing.
        """
        if not text:
            return text
        if self._literal is not None:
            text = self._literal.sub(REDACTED, text)
        if "eyJ" not in text:
            lowered = text.lower()
            if not any(hint in lowered for hint in _SHAPE_HINTS):
                return text
        return _SHAPES.sub(_replace_shape, text)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor for the secrets this process was given (see :func:`known_secrets`)."""
        return cls(known_secrets(os.environ if environ is None else environ))

    def __repr__(self) -> str:
        return f"Redactor({len(self._known)} known spellings)"


def known_secrets(environ: Mapping[str, str]) -> list[str]:
    """Every secret value the environment gives a Locust process, files read.

    An unreadable file contributes nothing here: the token source that reads it reports the
    error (naming the file, never its contents).
    """
    values = [environ.get(name, "") for name in (ENV_API_KEY, ENV_TOKEN, ENV_JWT_SECRET)]
    values += _file_lines(environ.get(ENV_TOKENS_FILE))
    for line in _file_lines(environ.get(ENV_LOGIN_FILE)):
        _email, _comma, password = line.partition(",")  # split on the first comma, as auth does
        values.append(password.strip())
    return [value for value in values if value]


def _file_lines(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


class RedactingLogRecord(logging.LogRecord):
    """A log record whose formatted message and exception text come out scrubbed.

    The scrubbing is lazy: a handler formats a record only after its level check, so a record
    no handler wants is never scanned. ``getMessage`` covers ``msg`` with its %-``args``
    (scrubbed after formatting, so that ``"> %s: %s", "X-API-Key", key`` is seen whole);
    ``exc_text`` is where ``logging.Formatter`` caches the traceback it formats, so scrubbing on
    assignment covers exception messages and tracebacks for every formatter.
    """

    redactor: Redactor | None = None

    def getMessage(self) -> str:
        try:
            message = super().getMessage()
        except (TypeError, ValueError):
            # logging would print msg and args raw to stderr (Handler.handleError): say what
            # was logged instead, scrubbed, rather than let a broken call leak its arguments.
            message = f"{self.msg!s} (bad logging arguments: {self.args!r})"
        return self.redactor.scrub(message) if self.redactor is not None else message

    @property
    def exc_text(self) -> str | None:  # type: ignore[override]
        return self.__dict__.get("_exc_text")

    @exc_text.setter
    def exc_text(self, text: str | None) -> None:
        if text and self.redactor is not None:
            text = self.redactor.scrub(text)
        self.__dict__["_exc_text"] = text


@dataclass
class LogRedaction:
    """The redaction installed in this process's logging (see :func:`install_log_redaction`)."""

    redactor: Redactor
    _previous: Callable[..., logging.LogRecord]
    _factory: Callable[..., logging.LogRecord]

    @property
    def active(self) -> bool:
        """Still the record factory (nobody has replaced it since)."""
        return logging.getLogRecordFactory() is self._factory

    def uninstall(self) -> None:
        """Put the previous record factory back (tests)."""
        if self.active:
            logging.setLogRecordFactory(self._previous)


def install_log_redaction(redactor: Redactor) -> LogRedaction:
    """Make every log record created from now on scrub itself with ``redactor``.

    Installed as the record factory rather than as a filter on handlers, because Locust (and
    any library) creates its handlers later, after the locustfile is imported; every handler,
    whenever made, formats the records this factory makes. A factory installed before is
    chained: its records are scrubbed eagerly, since they are not ours to make lazy.

    Installing again replaces the redactor of the installation that is active, so importing
    twice (or the init event after the import) never stacks factories.

    Args:
        redactor: what to scrub.

    Returns:
        The installation, to add secrets to (``.redactor.add``) or to uninstall.
    """
    current = logging.getLogRecordFactory()
    installed = getattr(current, "loadtest_redaction", None)
    if isinstance(installed, LogRedaction):
        installed.redactor = redactor
        return installed
    previous = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        if previous is logging.LogRecord:
            record = RedactingLogRecord(*args, **kwargs)
            record.redactor = redaction.redactor
        else:
            record = previous(*args, **kwargs)
            _scrub_eagerly(record, redaction.redactor)
        if record.stack_info:
            record.stack_info = redaction.redactor.scrub(record.stack_info)
        return record

    redaction = LogRedaction(redactor, previous, factory)
    factory.loadtest_redaction = redaction  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    return redaction


def _scrub_eagerly(record: logging.LogRecord, redactor: Redactor) -> None:
    """Scrub a record we did not make: format its message now, and its exception."""
    with contextlib.suppress(Exception):
        record.msg, record.args = redactor.scrub(record.getMessage()), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redactor.scrub(record.exc_text)


class ScrubbingWriter:
    """A text stream that passes whole lines, scrubbed, to the stream it wraps.

    Whole lines, because writers split them: ``print("token=", t)`` writes its pieces one by
    one, and a secret cut in two is found by no pattern. ``flush`` passes on a partial line
    as it stands, so prompts still show. Everything else (``isatty``, ``fileno``,
    ``encoding``) is the wrapped stream's.

    Args:
        stream: where the scrubbed text goes.
        redactor: what to scrub.
    """

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self.wrapped = stream
        self.redactor = redactor
        self._partial = ""

    def write(self, text: str) -> int:
        pending = self._partial + text
        complete, newline, self._partial = pending.rpartition("\n")
        if newline:
            self.wrapped.write(self.redactor.scrub(complete + newline))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, ""
            self.wrapped.write(self.redactor.scrub(partial))
        self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def scrub_console(redactor: Redactor) -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`ScrubbingWriter` (once).

    For text that never passes through ``logging``: gevent's hub prints a greenlet's uncaught
    exception to ``sys.stderr``, as do ``sys.excepthook`` and ``warnings``. Log handlers made
    before this call keep the stream they were given (their records are scrubbed already).
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            continue
        if isinstance(stream, ScrubbingWriter):
            stream.redactor = redactor
        else:
            setattr(sys, name, ScrubbingWriter(stream, redactor))


__all__ = [
    "REDACTED",
    "LogRedaction",
    "Redactor",
    "ScrubbingWriter",
    "install_log_redaction",
    "known_secrets",
    "scrub_console",
]
