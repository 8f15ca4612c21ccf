"""From options (or the environment) to the one :class:`TokenSource` they ask for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from loadtest.auth.environment import TokenChoice, api_key_from_environment, choose_token_source
from loadtest.auth.login import LoginTokens, load_login_file
from loadtest.auth.sources import MintedTokens, StaticToken, TokenFile
from loadtest.auth.token import TokenSource
from loadtest.errors import UsageError
from loadtest.rest import RestClient


def token_source_from_options(
    token: str | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    jwt_secret: str | None = None,
    login_file: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    environ: Mapping[str, str] = os.environ,
    rest: RestClient | None = None,
) -> TokenSource | None:
    """The one token source the options (or, failing them, the environment) ask for.

    The choice follows :func:`~loadtest.auth.environment.choose_token_source`: options given
    here win over the environment entirely; empty environment values count as unset.

    Args:
        token: ``--token``.
        tokens_file: ``--tokens-file``.
        jwt_secret: ``--jwt-secret``.
        login_file: ``--login-file``.
        base_url: the target URL, needed by ``--login-file``.
        api_key: ``--api-key`` for login requests; falls back to ``LOADTEST_API_KEY``.
        environ: where to read the fallbacks (injectable for tests).
        rest: the client logins go through (``--ca-file``, ``--insecure``, timeout); a
            default one (system CAs, 10 s) when not given.

    Returns:
        A :class:`TokenSource`, or ``None`` when no source was asked for (unauthenticated
        targets, such as the reference target with auth off).

    Raises:
        UsageError: more than one source, a bad file, or a login file without a target URL.
    """
    typed = {
        "token": token,
        "tokens_file": tokens_file,
        "jwt_secret": jwt_secret,
        "login_file": login_file,
    }
    choice = choose_token_source(typed, environ)
    if choice is None:
        return None
    if api_key is None:
        api_key = api_key_from_environment(environ)
    return build_token_source(choice, base_url=base_url, api_key=api_key, rest=rest)


def build_token_source(
    choice: TokenChoice,
    base_url: str | None = None,
    api_key: str | None = None,
    rest: RestClient | None = None,
) -> TokenSource:
    """The source for a choice already made.

    Raises:
        UsageError: a bad file, an empty token or secret, or a login file without a target.
    """
    if choice.name == "token":
        return StaticToken(choice.value)
    if choice.name == "tokens_file":
        return TokenFile(choice.value)
    if choice.name == "jwt_secret":
        return MintedTokens(choice.value)
    if not base_url:
        raise UsageError("--login-file needs the target URL (--host) to log in against")
    return LoginTokens(base_url, load_login_file(choice.value), api_key=api_key, rest=rest)
