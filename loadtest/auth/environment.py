"""The one place that owns the secrets' environment names and the "one token source" rule.

The rule, used by the CLI, the launcher and the scenarios alike:

- at most one source of JWTs: ``--token``, ``--tokens-file``, ``--jwt-secret`` or
  ``--login-file`` (none is fine: a target without auth);
- one *typed* (on the command line, or passed in code) beats the environment entirely, so a
  stale ``LOADTEST_JWT_SECRET`` in a CI job never blocks ``--tokens-file``;
- in the environment, empty values count as unset, as CI systems often define them empty.

Secrets reach Locust processes by environment only (never ``argv``, which ``ps`` shows), so
these names are also how ``loadtest run`` hands the chosen source to its children.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from loadtest.errors import UsageError

ENV_API_KEY = "LOADTEST_API_KEY"
ENV_TOKEN = "LOADTEST_TOKEN"
ENV_TOKENS_FILE = "LOADTEST_TOKENS_FILE"
ENV_JWT_SECRET = "LOADTEST_JWT_SECRET"
ENV_LOGIN_FILE = "LOADTEST_LOGIN_FILE"


@dataclass(frozen=True, slots=True)
class TokenSourceOption:
    """One way of getting JWTs: its option name, its flag and its environment variable."""

    name: str
    flag: str
    env: str
    #: The value is a path (resolved before it is handed to a child process).
    is_file: bool = False


TOKEN_SOURCE_OPTIONS = (
    TokenSourceOption("token", "--token", ENV_TOKEN),
    TokenSourceOption("tokens_file", "--tokens-file", ENV_TOKENS_FILE, is_file=True),
    TokenSourceOption("jwt_secret", "--jwt-secret", ENV_JWT_SECRET),
    TokenSourceOption("login_file", "--login-file", ENV_LOGIN_FILE, is_file=True),
)
_BY_NAME = {option.name: option for option in TOKEN_SOURCE_OPTIONS}
#: Every environment variable that names a token source.
TOKEN_SOURCE_ENV = tuple(option.env for option in TOKEN_SOURCE_OPTIONS)
CHOOSE_ONE = "choose one of " + ", ".join(option.flag for option in TOKEN_SOURCE_OPTIONS)


@dataclass(frozen=True, slots=True, repr=False)
class TokenChoice:
    """The token source the rule picked, and where it came from.

    Args:
        option: which source.
        value: the token, secret or path. Never shown by ``repr``.
        from_environment: read from ``option.env`` rather than typed.
    """

    option: TokenSourceOption
    value: str = field(repr=False)
    from_environment: bool = False

    @property
    def name(self) -> str:
        return self.option.name

    def environment(self) -> dict[str, str]:
        """The variable that hands this choice to a child process (paths made absolute)."""
        value = os.path.abspath(self.value) if self.option.is_file else self.value
        return {self.option.env: value}

    def __repr__(self) -> str:
        where = self.option.env if self.from_environment else self.option.flag
        return f"TokenChoice({where})"


def choose_token_source(
    typed: Mapping[str, str | os.PathLike[str] | None] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> TokenChoice | None:
    """Apply the rule: the one token source the typed options, or else the environment, name.

    Args:
        typed: option name (``token``, ``tokens_file``, ``jwt_secret``, ``login_file``) →
            value, for options given on the command line or in code; ``None`` means not given.
        environ: where the fallbacks are read (injectable for tests).

    Returns:
        The choice, or ``None`` when no source is asked for.

    Raises:
        UsageError: two typed, or none typed and two in the environment; a typed value that is
            empty (``--token "$UNSET"`` is a mistake, not a request for no auth). Never shows
            a value.
    """
    given = {name: value for name, value in (typed or {}).items() if value is not None}
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise ValueError(f"not token source options: {', '.join(unknown)}")
    if given:
        chosen = [TokenChoice(_BY_NAME[name], os.fspath(value)) for name, value in given.items()]
        for choice in chosen:
            if not choice.value.strip():
                raise UsageError(f"{choice.option.flag} is empty")
        if len(chosen) > 1:
            flags = ", ".join(choice.option.flag for choice in chosen)
            raise UsageError(f"{CHOOSE_ONE}; got {flags}")
        return chosen[0]
    chosen = [
        TokenChoice(option, environ[option.env], from_environment=True)
        for option in TOKEN_SOURCE_OPTIONS
        if environ.get(option.env)
    ]
    if len(chosen) > 1:
        names = ", ".join(choice.option.env for choice in chosen)
        raise UsageError(f"{CHOOSE_ONE}; got {names} from the environment")
    return chosen[0] if chosen else None


def api_key_from_environment(environ: Mapping[str, str] = os.environ) -> str | None:
    """``LOADTEST_API_KEY``, with an empty value counting as unset."""
    return environ.get(ENV_API_KEY) or None


def without_token_sources(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` with every token-source variable removed: a chosen source
    replaces whatever the parent's environment held, so a child sees exactly one."""
    return {name: value for name, value in environ.items() if name not in TOKEN_SOURCE_ENV}
