"""When to reconnect a dropped WebSocket, and how long to wait first.

Pure decision logic, no I/O and no sleeping: the session layer asks :class:`ReconnectPolicy`
*whether* to reconnect and a per-connection :class:`ReconnectSchedule` *how long* to wait, then
does the waiting itself (``gevent.sleep``). Keeping the clock out of here lets tests assert the
exact backoff sequence instead of measuring wall time.

The defaults are the FitIQ client guide's ``reconnect()``::

    delay(n) = min(2 ** n, 30) seconds for attempt n = 1, 2, …   →  2, 4, 8, 16, 30
    at most 5 attempts, the counter reset when a connection succeeds,
    no reconnect after a normal close (1000), none after HTTP 401 / 403 / 404.

Jitter is *bounded proportional* jitter: with ``jitter = j`` each delay is drawn uniformly from
``[(1 - j) * d, d]`` where ``d`` is the nominal delay above. ``j = 0`` is the guide's
deterministic schedule, ``j = 0.5`` is AWS "equal jitter", ``j = 1`` is "full jitter". Jitter only
ever *shortens* a delay, so the cap stays a hard upper bound, which is what a storm test needs to
reason about "the fleet is back within N seconds".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from loadtest.errors import UsageError

NORMAL_CLOSE = 1000
"""RFC 6455 close code for an intentional, clean shutdown."""

DEFAULT_NO_RETRY_STATUSES: frozenset[int] = frozenset({401, 403, 404})
"""Handshake statuses retrying cannot fix: bad token, forbidden consultation, unknown one."""

DEFAULT_AUTH_STATUSES: frozenset[int] = frozenset({401})
"""Handshake statuses meaning "your token is not accepted" (refresh may help)."""

DEFAULT_AUTH_CLOSE_CODES: frozenset[int] = frozenset({1008, 4001, 4401})
"""Close codes servers use for auth failures: 1008 policy violation, 4001/4401 by convention."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """Whether and when to reconnect; defaults are the FitIQ client guide's.

    Args:
        base_s: backoff base; attempt ``n`` waits ``base_s ** n`` seconds before the cap.
        cap_s: upper bound on any single delay, jitter included.
        max_attempts: reconnect attempts after one drop before giving up (``0`` = never).
        jitter: fraction in ``[0, 1]``; each delay is drawn from ``[(1 - jitter) * d, d]``.
        reconnect_on_normal_close: also reconnect after close code 1000 (off in the guide: a
            normal close is the server or the user meaning it).
        no_retry_statuses: handshake HTTP statuses never retried with backoff.
        auth_statuses: handshake HTTP statuses that are auth failures (see
            :meth:`is_auth_failure`).
        auth_close_codes: WebSocket close codes that are auth failures.

    Raises:
        UsageError: a value out of range, since these usually come straight from CLI options.
    """

    base_s: float = 2.0
    cap_s: float = 30.0
    max_attempts: int = 5
    jitter: float = 0.0
    reconnect_on_normal_close: bool = False
    no_retry_statuses: frozenset[int] = field(default=DEFAULT_NO_RETRY_STATUSES)
    auth_statuses: frozenset[int] = field(default=DEFAULT_AUTH_STATUSES)
    auth_close_codes: frozenset[int] = field(default=DEFAULT_AUTH_CLOSE_CODES)

    def __post_init__(self) -> None:
        if not self.base_s > 0:
            raise UsageError(f"reconnect backoff base must be > 0 s, got {self.base_s}")
        if not self.cap_s >= 0:
            raise UsageError(f"reconnect backoff cap must be >= 0 s, got {self.cap_s}")
        if self.max_attempts < 0:
            raise UsageError(f"reconnect max attempts must be >= 0, got {self.max_attempts}")
        if not 0.0 <= self.jitter <= 1.0:
            raise UsageError(f"reconnect jitter must be a fraction in [0, 1], got {self.jitter}")
        # Accept any iterable of ints from callers but store immutable sets, so the policy
        # stays hashable and safe to share between every user greenlet.
        for name in ("no_retry_statuses", "auth_statuses", "auth_close_codes"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))

    def should_reconnect(self, close_code: int | None, handshake_status: int | None) -> bool:
        """Whether a lost or refused connection is worth retrying with backoff.

        This answers "retry the same credentials after a wait". Auth failures therefore return
        ``False``: the caller checks :meth:`is_auth_failure` first and, per the guide, refreshes
        the token once and reconnects immediately, giving up if that fails too.

        Args:
            close_code: the WebSocket close code, or ``None`` when the connection never opened
                or died without a close frame (reset, timeout: abnormal, so retried).
            handshake_status: the HTTP status of a failed handshake, or ``None``. It takes
                precedence over ``close_code`` since the connection never opened.

        Returns:
            ``True`` to schedule a reconnect.
        """
        if handshake_status is not None:
            return handshake_status not in self.no_retry_statuses
        if close_code is None:
            return True
        if close_code == NORMAL_CLOSE:
            return self.reconnect_on_normal_close
        return close_code not in self.auth_close_codes

    def is_auth_failure(self, close_code: int | None, handshake_status: int | None) -> bool:
        """Whether a failure means the token was rejected, so refreshing it may help.

        Args:
            close_code: the WebSocket close code, or ``None``.
            handshake_status: the HTTP status of a failed handshake, or ``None``.

        Returns:
            ``True`` for a status in :attr:`auth_statuses` or a code in :attr:`auth_close_codes`.
        """
        return (handshake_status is not None and handshake_status in self.auth_statuses) or (
            close_code is not None and close_code in self.auth_close_codes
        )

    def nominal_delay_s(self, attempt: int) -> float:
        """The delay before ``attempt`` without jitter: ``min(base_s ** attempt, cap_s)``.

        Args:
            attempt: 1 for the first reconnect after a drop.

        Returns:
            Seconds to wait.

        Raises:
            ValueError: ``attempt < 1``, a caller bug.
        """
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        try:
            return min(self.base_s**attempt, self.cap_s)
        except OverflowError:
            # A long-lived schedule with a huge max_attempts: the power is past any cap.
            return self.cap_s

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before ``attempt``, jittered within ``[(1 - jitter) * d, d]``.

        Args:
            attempt: 1 for the first reconnect after a drop.
            rng: source of jitter; pass a seeded one for reproducible runs and tests. ``None``
                uses the ``random`` module. Unused when ``jitter`` is 0.

        Returns:
            Seconds to wait, never more than ``cap_s``.

        Raises:
            ValueError: ``attempt < 1``.
        """
        nominal = self.nominal_delay_s(attempt)
        if self.jitter == 0.0:
            return nominal
        draw = (rng or random).random()
        return nominal * (1.0 - self.jitter * draw)

    def schedule(
        self, rng: random.Random | None = None, *, seed: int | None = None
    ) -> ReconnectSchedule:
        """A fresh attempt counter following this policy, for one connection.

        Args:
            rng: jitter source handed to :meth:`delay_s` (seed it per user for reproducibility).
            seed: instead of ``rng``, the seed of a ``random.Random`` made on the first jittered
                delay: the same draws, without 2.6 KB per idle connection that never reconnects.

        Returns:
            A new :class:`ReconnectSchedule` at attempt 0.
        """
        return ReconnectSchedule(self, rng, seed=seed)


class ReconnectSchedule:
    """The attempt counter of one connection, so callers never re-implement the counting.

    Usage in a session::

        schedule = policy.schedule(rng)
        while (delay := schedule.next_delay()) is not None:
            gevent.sleep(delay)
            if try_connect():
                schedule.reset()
                break
        else:
            count("reconnect_giveups")

    Not shared between greenlets: each connection owns one.

    Args:
        policy: the delays and the attempt limit.
        rng: jitter source; ``None`` uses the ``random`` module.
        seed: with no ``rng``, seed of the jitter source made when the first delay is drawn.
    """

    __slots__ = ("_attempt", "_gave_up", "_rng", "_seed", "policy")

    def __init__(
        self, policy: ReconnectPolicy, rng: random.Random | None = None, *, seed: int | None = None
    ) -> None:
        self.policy = policy
        self._rng = rng
        self._seed = seed
        self._attempt = 0
        self._gave_up = False

    @property
    def attempt(self) -> int:
        """Attempts handed out since the last reset; stays at ``max_attempts`` once given up."""
        return self._attempt

    @property
    def gave_up(self) -> bool:
        """True once :meth:`next_delay` has returned ``None`` since the last reset."""
        return self._gave_up

    def next_delay(self) -> float | None:
        """Count one more attempt and say how long to wait before it.

        Returns:
            Seconds to wait before reconnecting, or ``None`` when ``max_attempts`` are used up
            (and on every later call until :meth:`reset`): the caller gives up.
        """
        if self._attempt >= self.policy.max_attempts:
            self._gave_up = True
            return None
        self._attempt += 1
        if self._rng is None and self._seed is not None and self.policy.jitter:
            self._rng = random.Random(self._seed)
        return self.policy.delay_s(self._attempt, self._rng)

    def reset(self) -> None:
        """Start over after a successful connection: the next delay is the first step again."""
        self._attempt = 0
        self._gave_up = False

    def __repr__(self) -> str:
        return (
            f"ReconnectSchedule(attempt={self._attempt}, max_attempts={self.policy.max_attempts},"
            f" gave_up={self._gave_up})"
        )
