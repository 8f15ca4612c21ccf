"""The Locust command-line options our users and collector understand.

Registered on Locust's own parser, so ``locust -f scenarios/chat.py --stream-timeout 30`` and
``loadtest run … -- --stream-timeout 30`` both work, and each option can also come from the
environment as ``LOCUST_<NAME>``. Secrets are deliberately *not* options here: they come only
from the environment (``LOADTEST_API_KEY``, ``LOADTEST_TOKEN``, ``LOADTEST_JWT_SECRET``…),
so they never show in ``ps`` or in ``run.json``.
"""

from __future__ import annotations

from typing import Any

from loadtest.receive_stamps import CLOCKS

#: (flag, keyword arguments for ``parser.add_argument``)
OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--loadtest-out", {"default": "", "help": "run directory (default reports/<UTC>-<name>)"}),
    ("--loadtest-scenario", {"default": "", "help": "scenario name for the run directory"}),
    ("--window", {"type": float, "default": 1.0, "help": "metrics window, seconds"}),
    ("--stream-timeout", {"type": float, "default": 60.0, "help": "seconds to wait for a reply"}),
    ("--think-time", {"default": "1-3", "help": "seconds between a reply and the next message: "
                                                "'2' or '1-3' (uniform)"}),
    ("--id-key", {"default": "message_id", "choices": ["message_id", "messageId"],
                  "help": "how our messages spell the id (the guide uses both)"}),
    ("--consultation-id", {"default": "", "help": "use this consultation instead of creating one "
                                                  "per user with POST /consultations"}),
    ("--consultation-type", {"default": "nutrition"}),
    ("--heartbeat-interval", {"type": float, "default": 30.0,
                              "help": "app-level ping every N s (0 = off)"}),
    ("--pong-timeout", {"type": float, "default": 10.0}),
    ("--max-missed-pongs", {"type": int, "default": 2}),
    ("--reconnect-base", {"type": float, "default": 2.0}),
    ("--reconnect-cap", {"type": float, "default": 30.0}),
    ("--reconnect-max-attempts", {"type": int, "default": 5}),
    ("--reconnect-jitter", {"type": float, "default": 0.0}),
    ("--retry-interrupted", {"action": "store_true", "default": False,
                             "help": "resend a message whose stream a drop cut, once"}),
    ("--open-timeout", {"type": float, "default": 10.0, "help": "handshake timeout, s"}),
    ("--insecure", {"action": "store_true", "default": False,
                    "help": "do not verify wss:// certificates"}),
    ("--ca-file", {"default": "", "help": "PEM bundle to trust for wss://"}),
    ("--compression", {"action": "store_true", "default": False,
                       "help": "offer permessage-deflate"}),
    ("--receive-clock", {"default": "auto", "choices": list(CLOCKS),
                         "help": "stamp received frames when the kernel got their bytes "
                                 "(Linux, plain TCP; auto: loopback targets only) or when "
                                 "our loop read them"}),
    ("--prompts-file", {"default": "", "help": "one prompt per line (default: shipped corpus)"}),
    ("--seed", {"type": int, "default": 0, "help": "seed for prompts and think times"}),
    ("--progress-every", {"type": float, "default": 5.0, "help": "progress line every N s"}),
    ("--warmup", {"default": "0", "help": "leave the first D after the ramp out of the headline "
                                          "metrics (Locust time syntax: 30s, 2m)"}),
    ("--slo", {"default": "", "help": "SLO file (TOML) to judge the run by"}),
    ("--report-format", {"default": "html,md,json",
                         "help": "reports written into the run directory at the end"}),
)


def add_options(parser: Any) -> None:
    """Add our options to Locust's argument parser (``events.init_command_line_parser``)."""
    group = parser.add_argument_group("loadtest", "streaming chat measurement")
    for flag, kwargs in OPTIONS:
        env = "LOCUST_" + flag.lstrip("-").replace("-", "_").upper()
        group.add_argument(flag, env_var=env, **kwargs)


def parse_think_time(text: str) -> tuple[float, float]:
    """``"2"`` → (2, 2); ``"1-3"`` → (1, 3).

    Raises:
        ValueError: not one or two non-negative numbers.
    """
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        bounds = (-1.0, -1.0)
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise ValueError(f"expected seconds as 'N' or 'MIN-MAX' (e.g. 1-3), not {text!r}")
    return bounds

ARRIVAL_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--arrival-rate", {"type": float, "default": 0.0,
                        "help": "open model: new conversations per second, across all users"}),
    ("--arrival-process", {"default": "constant", "choices": ["constant", "poisson"]}),
    ("--max-in-flight", {"type": int, "default": 1000,
                         "help": "open model: conversations in flight per user before new "
                                 "arrivals are dropped (and counted)"}),
    ("--turns", {"type": int, "default": 1,
                 "help": "open model: messages per arriving conversation"}),
)
OPTIONS = OPTIONS + ARRIVAL_OPTIONS

LIFECYCLE_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--lifetime", {"default": "10-60", "help": "churn: seconds a user stays ('N' or 'MIN-MAX')"}),
    ("--churn-rate", {"type": float, "default": 0.0,
                      "help": "churn: new connections per second across users "
                              "(exponential lifetimes with mean users / rate)"}),
    ("--abrupt-share", {"type": float, "default": 0.3,
                        "help": "churn: share of departures that reset TCP instead of closing"}),
    ("--rejoin-after", {"default": "0-2", "help": "churn: seconds away between lives"}),
    ("--storm-at", {"type": float, "default": 0.0,
                    "help": "storm: seconds after start to drop every connection (0 = never)"}),
    ("--storm-refuse", {"type": float, "default": 2.0,
                        "help": "storm: seconds the target refuses handshakes afterwards"}),
    ("--storm-share", {"type": float, "default": 1.0,
                       "help": "storm: share of the connections dropped (1 = all)"}),
)
OPTIONS = OPTIONS + LIFECYCLE_OPTIONS

SCENARIO_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--spike-users", {"type": int, "default": 0,
                       "help": "spike: users during the burst (default 3 × -u)"}),
    ("--spike-at", {"type": float, "default": 30.0, "help": "spike: seconds until the burst"}),
    ("--spike-duration", {"type": float, "default": 10.0,
                          "help": "spike: seconds the burst lasts"}),
)
OPTIONS = OPTIONS + SCENARIO_OPTIONS

CAPACITY_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--steps", {"default": "",
                 "help": "capacity: users per step, comma-separated (e.g. 2,4,8,16)"}),
    ("--rate-steps", {"default": "",
                      "help": "capacity, open model: arrivals per second per step (e.g. 5,10,20)"}),
    ("--step-time", {"default": "30s",
                     "help": "capacity: how long each step holds its load (Locust time syntax)"}),
)
OPTIONS = OPTIONS + CAPACITY_OPTIONS

CONVERSATION_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--conversation-turns", {"default": "3-8",
                              "help": "conversation: turns per consultation ('N' or 'MIN-MAX')"}),
    ("--think-distribution", {"default": "lognormal", "choices": ["lognormal", "uniform"],
                              "help": "conversation: pauses between turns, lognormal "
                                      "(--think-median/--think-sigma/--think-cap) or uniform "
                                      "(--think-time)"}),
    ("--think-median", {"type": float, "default": 8.0,
                        "help": "conversation: median pause between turns, s (lognormal)"}),
    ("--think-sigma", {"type": float, "default": 0.6,
                       "help": "conversation: standard deviation of the pause's log (lognormal)"}),
    ("--think-cap", {"type": float, "default": 60.0,
                     "help": "conversation: no pause is longer, s (lognormal)"}),
    ("--batch-share", {"type": float, "default": 0.0,
                       "help": "conversation: share of turns typed as 2-3 quick messages the "
                               "client joins into one after 0.3 s (the guide's batching)"}),
    ("--probe-rates", {"default": "1,2,4,8,16",
                       "help": "ratelimit: messages per second per connection, one per step"}),
    ("--probe-step-time", {"type": float, "default": 5.0,
                           "help": "ratelimit: seconds each rate step lasts (the last one "
                                   "lasts until the run ends)"}),
)
OPTIONS = OPTIONS + CONVERSATION_OPTIONS
