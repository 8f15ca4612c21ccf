"""What every simulated user in one Locust process shares: config, tokens, prompts.

Built once per process from Locust's parsed options and the environment (secrets live only
there), so a bad option fails the run at start with one line, not once per user.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.auth import TokenSource, api_key_from_environment, token_source_from_options
from loadtest.errors import UsageError
from loadtest.prompts import PromptPicker, load_prompts
from loadtest.reconnect import ReconnectPolicy
from loadtest.rest import RestClient
from loadtest.session import Endpoints, SessionConfig
from loadtest.thinking import ThinkTime
from loadtest.transport import ConnectOptions
from loadtest.users.options import parse_think_time


@dataclass
class UserContext:
    """Shared by every user of this process."""

    session_config: SessionConfig
    tokens: TokenSource | None
    prompts: PromptPicker
    #: ``--think-time``: the uniform pause of the chat-like users.
    think_time: ThinkTime
    rng: random.Random
    first_user_index: int = 0
    #: Every REST call of this process (consultations, login, refresh): the WebSocket's TLS
    #: trust (``--ca-file``, ``--insecure``) and ``--open-timeout``, no proxy.
    rest: RestClient | None = None
    _user_numbers: itertools.count = field(default_factory=itertools.count)
    _driver_numbers: itertools.count = field(default_factory=itertools.count)

    def next_user_index(self) -> int:
        """A user number unique across workers (each worker gets its own block)."""
        return self.first_user_index + next(self._user_numbers)

    def next_driver_index(self) -> int:
        """Open model: this process's arrival drivers, numbered from 0 (conversations, which
        take user numbers too, do not shift them)."""
        return next(self._driver_numbers)

    def think(self) -> float:
        return self.think_time.draw(self.rng)

    @classmethod
    def from_options(cls, host: str | None, options: Any, worker_index: int = 0) -> UserContext:
        """Build from Locust's parsed options.

        Raises:
            UsageError: no host, or a bad option value, as one line.
        """
        if not host:
            raise UsageError("no target: pass --host (ws://, wss://, http:// or https://)")
        try:
            low, high = parse_think_time(str(options.think_time))
            think = ThinkTime(low_s=low, high_s=high)
        except ValueError as exc:
            raise UsageError(f"--think-time: {exc}") from None
        _check_ranges(options)
        api_key = api_key_from_environment()
        endpoints = Endpoints.from_base_url(host)
        policy = ReconnectPolicy(
            base_s=options.reconnect_base,
            cap_s=options.reconnect_cap,
            max_attempts=options.reconnect_max_attempts,
            jitter=options.reconnect_jitter,
        )
        config = SessionConfig(
            endpoints=endpoints,
            api_key=api_key,
            id_key=options.id_key,
            connect=ConnectOptions(
                open_timeout_s=options.open_timeout,
                insecure=options.insecure,
                ca_file=options.ca_file or None,
                compression=options.compression,
                receive_clock=options.receive_clock,
            ),
            stream_timeout_s=options.stream_timeout,
            consultation_id=options.consultation_id or None,
            consultation_type=options.consultation_type,
            heartbeat_interval_s=options.heartbeat_interval or None,
            pong_timeout_s=options.pong_timeout,
            max_missed_pongs=options.max_missed_pongs,
            reconnect=policy,
            retry_interrupted=options.retry_interrupted,
            seed=options.seed,
        )
        rest = RestClient.for_connect_options(config.connect)
        tokens = token_source_from_options(
            base_url=endpoints.http_base, api_key=api_key, rest=rest
        )
        prompts = load_prompts(Path(options.prompts_file) if options.prompts_file else None)
        seed = options.seed + worker_index
        return cls(
            session_config=config,
            tokens=tokens,
            prompts=PromptPicker(prompts, seed=seed),
            think_time=think,
            rng=random.Random(seed),
            first_user_index=worker_index * 1_000_000,
            rest=rest,
        )


#: option attribute → (flag, lowest allowed, whether the lowest is allowed itself)
RANGES: tuple[tuple[str, str, float, bool], ...] = (
    ("stream_timeout", "--stream-timeout", 0.0, False),
    ("open_timeout", "--open-timeout", 0.0, False),
    ("heartbeat_interval", "--heartbeat-interval", 0.0, True),
    ("pong_timeout", "--pong-timeout", 0.0, False),
    ("max_missed_pongs", "--max-missed-pongs", 1.0, True),
    ("max_in_flight", "--max-in-flight", 1.0, True),
    ("turns", "--turns", 1.0, True),
    ("churn_rate", "--churn-rate", 0.0, True),
    ("storm_at", "--storm-at", 0.0, True),
    ("storm_refuse", "--storm-refuse", 0.0, True),
    ("window", "--window", 0.0, False),
)
SHARES: tuple[tuple[str, str], ...] = (
    ("abrupt_share", "--abrupt-share"),
    ("storm_share", "--storm-share"),
    ("reconnect_jitter", "--reconnect-jitter"),
)


def _check_ranges(options: Any) -> None:
    """Nonsense numbers fail at start with one line, not as odd results later."""
    for name, flag, lowest, inclusive in RANGES:
        value = getattr(options, name, None)
        if value is None:
            continue
        if value < lowest or (value == lowest and not inclusive):
            relation = ">=" if inclusive else ">"
            raise UsageError(f"{flag} must be {relation} {lowest:g}, not {value:g}")
    for name, flag in SHARES:
        value = getattr(options, name, None)
        if value is not None and not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} is a share between 0 and 1, not {value:g}")
