"""One user's current token: fetched once, refreshed before it expires or when refused.

Token sources are shared by every user of a process and keep no per-user state (see
:mod:`loadtest.auth`); this is the per-user half.
"""

from __future__ import annotations

from loadtest.auth import Token, TokenSource
from loadtest.errors import AuthError
from loadtest.rest import RestError
from loadtest.session.observer import SessionObserver


def rest_failure_of(error: AuthError) -> tuple[str, str] | None:
    """``(call, kind)`` of the REST call behind an auth failure, when it was one."""
    return (error.call, error.kind) if isinstance(error, RestError) else None


class UserCredentials:
    """The token one simulated user connects with.

    Args:
        tokens: the process's token source; ``None`` sends no token.
        user_index: which user (token round-robin, minted subject, login line).
        observer: told of refreshes and of failed auth REST calls.
    """

    def __init__(
        self, tokens: TokenSource | None, user_index: int, observer: SessionObserver
    ) -> None:
        self._tokens = tokens
        self._user_index = user_index
        self._observer = observer
        self._token: Token | None = None

    def current(self) -> Token | None:
        """The token to connect with now, refreshed first if it is about to expire.

        Raises:
            AuthError: no token can be had (a refused login, say); the failed REST call, if
                there was one, has been reported.
        """
        if self._tokens is None:
            return None
        if self._token is None:
            try:
                self._token = self._tokens.token_for(self._user_index)
            except AuthError as exc:
                self._report(exc)
                raise
        elif self._token.is_expired():
            self.refresh()
        return self._token

    def refresh(self) -> bool:
        """Replace the current token (expired, or refused by the server).

        Returns:
            Whether a new token was obtained; ``False`` when the source cannot refresh.
        """
        if self._tokens is None:
            return False
        try:
            current = self._token or self._tokens.token_for(self._user_index)
            self._token = self._tokens.refresh(self._user_index, current)
        except AuthError as exc:
            self._report(exc)
            return False
        self._observer.token_refreshed()
        return True

    def _report(self, error: AuthError) -> None:
        if isinstance(error, RestError):  # a login or refresh call that failed: count it
            self._observer.rest_call(error.call, error.elapsed_ms, error.kind)
