"""Where JWTs come from: one :class:`TokenSource` interface, four sources.

- :mod:`~loadtest.auth.token`: the :class:`Token` value (expiry read from the JWT, shown by
  fingerprint only) and the :class:`TokenSource` interface;
- :mod:`~loadtest.auth.sources`: :class:`StaticToken`, :class:`TokenFile`,
  :class:`MintedTokens`, which need no server;
- :mod:`~loadtest.auth.login`: :class:`LoginTokens`, logging users in over REST;
- :mod:`~loadtest.auth.environment`: the environment names and the "one token source" rule;
- :mod:`~loadtest.auth.options`: :func:`token_source_from_options`, options → source.

Locust users call :meth:`TokenSource.token_for` once and :meth:`TokenSource.refresh` when the
token expires or the server rejects it. Sources are shared by every user greenlet of a
process and never put a secret in an exception message or a ``repr``.

The names below are loaded on first use (PEP 562), so the CLI can read the environment names
from :mod:`~loadtest.auth.environment` without importing JWT, TLS and gevent first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtest.auth.environment import (
        CHOOSE_ONE,
        ENV_API_KEY,
        ENV_JWT_SECRET,
        ENV_LOGIN_FILE,
        ENV_TOKEN,
        ENV_TOKENS_FILE,
        TOKEN_SOURCE_ENV,
        TOKEN_SOURCE_OPTIONS,
        TokenChoice,
        TokenSourceOption,
        api_key_from_environment,
        choose_token_source,
        without_token_sources,
    )
    from loadtest.auth.login import (
        AuthRefused,
        Credential,
        LoginFailed,
        LoginTokens,
        load_login_file,
    )
    from loadtest.auth.options import build_token_source, token_source_from_options
    from loadtest.auth.sources import MintedTokens, StaticToken, TokenFile
    from loadtest.auth.token import Token, TokenSource, fingerprint, jwt_expiry
    from loadtest.errors import AuthError
    from loadtest.rest import http_base_url

#: public name → the module that defines it
_HOMES = {
    "CHOOSE_ONE": "loadtest.auth.environment",
    "ENV_API_KEY": "loadtest.auth.environment",
    "ENV_JWT_SECRET": "loadtest.auth.environment",
    "ENV_LOGIN_FILE": "loadtest.auth.environment",
    "ENV_TOKEN": "loadtest.auth.environment",
    "ENV_TOKENS_FILE": "loadtest.auth.environment",
    "TOKEN_SOURCE_ENV": "loadtest.auth.environment",
    "TOKEN_SOURCE_OPTIONS": "loadtest.auth.environment",
    "TokenChoice": "loadtest.auth.environment",
    "TokenSourceOption": "loadtest.auth.environment",
    "api_key_from_environment": "loadtest.auth.environment",
    "choose_token_source": "loadtest.auth.environment",
    "without_token_sources": "loadtest.auth.environment",
    "AuthRefused": "loadtest.auth.login",
    "Credential": "loadtest.auth.login",
    "LoginFailed": "loadtest.auth.login",
    "LoginTokens": "loadtest.auth.login",
    "load_login_file": "loadtest.auth.login",
    "build_token_source": "loadtest.auth.options",
    "token_source_from_options": "loadtest.auth.options",
    "MintedTokens": "loadtest.auth.sources",
    "StaticToken": "loadtest.auth.sources",
    "TokenFile": "loadtest.auth.sources",
    "Token": "loadtest.auth.token",
    "TokenSource": "loadtest.auth.token",
    "fingerprint": "loadtest.auth.token",
    "jwt_expiry": "loadtest.auth.token",
    "AuthError": "loadtest.errors",
    "http_base_url": "loadtest.rest",
}
__all__ = [  # the same names as _HOMES (a test holds them equal)
    "CHOOSE_ONE",
    "ENV_API_KEY",
    "ENV_JWT_SECRET",
    "ENV_LOGIN_FILE",
    "ENV_TOKEN",
    "ENV_TOKENS_FILE",
    "TOKEN_SOURCE_ENV",
    "TOKEN_SOURCE_OPTIONS",
    "AuthError",
    "AuthRefused",
    "Credential",
    "LoginFailed",
    "LoginTokens",
    "MintedTokens",
    "StaticToken",
    "Token",
    "TokenChoice",
    "TokenFile",
    "TokenSource",
    "TokenSourceOption",
    "api_key_from_environment",
    "build_token_source",
    "choose_token_source",
    "fingerprint",
    "http_base_url",
    "jwt_expiry",
    "load_login_file",
    "token_source_from_options",
    "without_token_sources",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    return __all__
