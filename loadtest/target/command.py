"""``loadtest serve``: the reference FitIQ target, in the foreground.

Thin: parse and validate options into a :class:`ServerConfig`, then hand over to the server.
"""

from __future__ import annotations

import os
import secrets
import ssl
import sys
import textwrap
from pathlib import Path

import click

from loadtest.errors import LoadtestError
from loadtest.target.config import BUSY_POLICIES, ID_KEYS, ServerConfig
from loadtest.target.faults import FAULT_KINDS, Fault, parse_fault_option
from loadtest.target.profiles import PROFILES, build_profile, profile_parameters


def _epilog() -> str:
    lines = ["\b", "Faults (--fault KIND=VALUE, repeatable; RATE is 0..1 or N%, per stream",
             "unless noted; change them at run time with PUT /admin/faults/KIND):"]
    for kind, (does, syntax) in FAULT_KINDS.items():
        spec = f"{kind}={syntax}"
        lines += textwrap.wrap(does, 76, initial_indent=f"  {spec:<26}", subsequent_indent=" " * 28)
    lines += ["  (refuse and slow_handshake roll per handshake, swallow_pong per app-level ping)",
              "", "\b", "Profile parameters (--set KEY=VALUE), defaults:"]
    for name in PROFILES:
        params = ", ".join(f"{k}={v:g}" for k, v in profile_parameters(name).items())
        lines += textwrap.wrap(params, 76, initial_indent=f"  {name}: ", subsequent_indent="    ")
    lines += ["", "\b", "Prints 'LOADTEST_TARGET_READY http://HOST:PORT' once listening.",
              "Close code 4001 \"token expired\": the session's JWT expired (expire_token fault",
              "or --enforce-token-expiry). Details: docs/target.md"]
    return "\n".join(lines)


def _parse_faults(ctx: click.Context, param: click.Parameter,
                  values: tuple[str, ...]) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for text in values:
        try:
            fault = parse_fault_option(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        faults[fault.kind] = fault
    return faults


def _parse_settings(ctx: click.Context, param: click.Parameter,
                    values: tuple[str, ...]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{text!r} is not KEY=VALUE", ctx=ctx, param=param)
        settings[key.strip()] = value.strip()
    return settings


def _reexec_without_gevent() -> None:
    """A gevent-patched process (e.g. a CLI that imported Locust) would run asyncio on patched
    sockets; start the target afresh in a clean interpreter instead."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is None or not gevent_monkey.is_module_patched("socket"):
        return
    argv = sys.argv[1:]
    if "serve" in argv:
        args = argv[argv.index("serve") + 1:]
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "loadtest.target", *args])


@click.command("serve", epilog=_epilog())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port; 0 picks a free one (printed in the ready line).")
@click.option("--profile", "profile_name", default="realistic", show_default=True,
              type=click.Choice(list(PROFILES)), help="Latency profile of replies.")
@click.option("--ttfc-ms", type=click.FloatRange(min=0), default=None,
              help="Time to first chunk (fixed/capacity: exact; realistic: median).")
@click.option("--chunk-gap-ms", type=click.FloatRange(min=0), default=None,
              help="Gap between chunks (realistic: median).")
@click.option("--chunks", type=click.IntRange(min=1), default=None,
              help="Chunks per reply (realistic: median).")
@click.option("--set", "settings", multiple=True, callback=_parse_settings, metavar="KEY=VALUE",
              help="Any profile parameter (see below); repeatable.")
@click.option("--fault", "faults", multiple=True, callback=_parse_faults, metavar="KIND=VALUE",
              help="Inject a fault (see below); repeatable.")
@click.option("--ground-truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write server-side timings, one JSON line per stream/connection event.")
@click.option("--processes", type=click.IntRange(min=0), default=1, show_default=True,
              help="Server processes sharing the port (SO_REUSEPORT); 0 = one per CPU.")
@click.option("--strict/--lenient", default=False, show_default=True,
              help="Strict: unknown consultation ids get 404; lenient accepts any id.")
@click.option("--id-key", type=click.Choice(ID_KEYS), default="message_id", show_default=True,
              help="Id field name in frames the server sends (incoming accepts both).")
@click.option("--busy", type=click.Choice(BUSY_POLICIES), default="queue", show_default=True,
              help="A user_message arriving mid-reply: queue it, or reject with an error frame.")
@click.option("--template-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of completed replies followed by template_created.")
@click.option("--ws-ping-interval", type=click.FloatRange(min=0), default=20.0,
              show_default=True, help="WebSocket-level ping every N s; 0 = off.")
@click.option("--ws-ping-timeout", type=click.FloatRange(min=0, min_open=True), default=20.0,
              show_default=True, help="Close (1011) when a ping gets no pong within N s.")
@click.option("--token-ttl", type=click.IntRange(min=1), default=900, show_default=True,
              help="Lifetime of access tokens from /auth/login and /auth/refresh, seconds.")
@click.option("--refresh-ttl", type=click.IntRange(min=1), default=86400, show_default=True,
              help="Lifetime of refresh tokens, seconds.")
@click.option("--enforce-token-expiry", is_flag=True,
              help="Close a session with 4001 when its access token expires.")
@click.option("--jwt-secret", envvar="LOADTEST_JWT_SECRET", show_envvar=True, default=None,
              help="HS256 secret; default: random, so only tokens from /auth/login work.")
@click.option("--api-key", envvar="LOADTEST_API_KEY", show_envvar=True, default=None,
              help="Required X-API-Key; default: no check.")
@click.option("--seed", type=int, default=None, help="Seed for latencies and fault dice.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="PEM certificate (chain): serve https/wss on the port.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="PEM private key for --tls-cert.")
def serve(host: str, port: int, profile_name: str, ttfc_ms: float | None,
          chunk_gap_ms: float | None, chunks: int | None, settings: dict[str, str],
          faults: dict[str, Fault], ground_truth: Path | None, processes: int, strict: bool,
          id_key: str, busy: str, template_share: float, ws_ping_interval: float,
          ws_ping_timeout: float, token_ttl: int, refresh_ttl: int, enforce_token_expiry: bool,
          jwt_secret: str | None, api_key: str | None, seed: int | None,
          tls_cert: Path | None, tls_key: Path | None) -> None:
    """Run the reference FitIQ target (REST + WebSocket on one port) in the foreground."""
    _reexec_without_gevent()
    params: dict[str, object] = dict(settings)
    for key, value in (("ttfc_ms", ttfc_ms), ("chunk_gap_ms", chunk_gap_ms),
                       ("chunks", chunks)):
        if value is not None:
            params[key] = value
    try:
        profile = build_profile(profile_name, params)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set/--profile") from None
    config = ServerConfig(
        host=host, port=port, profile=profile, faults=faults, ground_truth=ground_truth,
        processes=processes or os.cpu_count() or 1, strict=strict, id_key=id_key, busy=busy,
        template_share=template_share, ws_ping_interval=ws_ping_interval,
        ws_ping_timeout=ws_ping_timeout, token_ttl=token_ttl, refresh_ttl=refresh_ttl,
        enforce_token_expiry=enforce_token_expiry,
        jwt_secret=jwt_secret or secrets.token_urlsafe(32), api_key=api_key or None, seed=seed,
        tls_cert=tls_cert, tls_key=tls_key,
    )
    if (tls_cert is None) != (tls_key is None):
        raise click.BadParameter("give both --tls-cert and --tls-key, or neither",
                                 param_hint="--tls-cert/--tls-key")
    try:
        config.ssl_context()
    except (OSError, ssl.SSLError) as exc:
        raise click.BadParameter(f"cannot load certificate and key: {exc}",
                                 param_hint="--tls-cert/--tls-key") from None
    # Imported here so that `--help` and option errors stay fast.
    from loadtest.target.server import run_single
    from loadtest.target.supervisor import run_processes

    try:
        if config.processes > 1:
            run_processes(config)
        else:
            run_single(config)
    except LoadtestError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = exc.exit_code
        raise error from None
