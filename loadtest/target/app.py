"""The aiohttp application: REST endpoints and the consultation WebSocket on one port.

Handshake refusals are plain HTTP responses with a JSON ``{"error": ...}`` body, as the real
backend's error handling expects (401, 403, 404, 503), never a WebSocket close.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from aiohttp import web

from loadtest.target.admin import add_admin_routes
from loadtest.target.arrival_socket import stamp_arrivals
from loadtest.target.auth import TokenRejected, user_id_for
from loadtest.target.connection import ConsultationConnection
from loadtest.target.context import TargetContext
from loadtest.target.control import Stat

CTX = web.AppKey("ctx", TargetContext)
MAX_CLIENT_MESSAGE = 1024 * 1024
CLOSE_HANDSHAKE_TIMEOUT_S = 2.0
_REJECT_STAT = {401: Stat.handshakes_rejected_401, 403: Stat.handshakes_rejected_403,
                404: Stat.handshakes_rejected_404, 503: Stat.handshakes_rejected_503}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _api_key_ok(ctx: TargetContext, request: web.Request) -> bool:
    expected = ctx.config.api_key
    if expected is None:
        return True
    given = request.headers.get("X-API-Key", "")
    return hmac.compare_digest(given.encode(), expected.encode())


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _refuse_handshake(ctx: TargetContext, status: int, reason: str) -> web.Response:
    ctx.counters[_REJECT_STAT[status]] += 1
    if ctx.ground_truth is not None:
        ctx.ground_truth.write({"event": "refused", "t": perf_counter(), "status": status,
                                "reason": reason})
    return error_response(status, reason)


@web.middleware
async def restart_window(request: web.Request, handler: Handler) -> web.StreamResponse:
    """While "restarting", everything but the admin API answers 503, as a down backend would."""
    ctx = request.app[CTX]
    if not request.path.startswith("/admin/") and ctx.settings.refusing():
        if request.path == "/ws/consultation":
            return _refuse_handshake(ctx, 503, "service restarting")
        return error_response(503, "service restarting")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def login(request: web.Request) -> web.Response:
    """Any non-empty email and password log in; the user id is derived from the email."""
    body = await _json_object(request) or {}
    email, password = body.get("email"), body.get("password")
    if not (isinstance(email, str) and email.strip() and isinstance(password, str) and password):
        return error_response(401, "invalid credentials")
    pair = request.app[CTX].authority.mint_pair(user_id_for(email))
    return web.json_response(pair.as_response())


async def refresh(request: web.Request) -> web.Response:
    body = await _json_object(request) or {}
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        return error_response(401, "refresh_token required")
    authority = request.app[CTX].authority
    try:
        claims = authority.verify(token, token_type="refresh")
    except TokenRejected as exc:
        return error_response(401, str(exc))
    return web.json_response(authority.mint_pair(str(claims["sub"])).as_response())


async def create_consultation(request: web.Request) -> web.Response:
    """``POST /consultations``: owned by the token's subject, whatever ``user_id`` says."""
    ctx = request.app[CTX]
    if not _api_key_ok(ctx, request):
        return error_response(401, "invalid API key")
    try:
        claims = ctx.authority.verify(_bearer(request))
    except TokenRejected as exc:
        return error_response(401, str(exc))
    body = await _json_object(request)
    if body is None or not isinstance(body.get("consultation_type"), str):
        return error_response(400, "body must be a JSON object with consultation_type")
    initial = body.get("initial_message")
    if initial is not None and not isinstance(initial, str):
        return error_response(400, "initial_message must be a string or null")
    owner = str(claims["sub"])
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return web.json_response(
        {"id": ctx.authority.new_consultation_id(owner), "user_id": owner,
         "consultation_type": body["consultation_type"], "status": "active",
         "created_at": created, "initial_message": initial},
        status=201,
    )


async def consultation_socket(request: web.Request) -> web.StreamResponse:
    """``GET /ws/consultation?consultation_id=…&token=…`` with ``X-API-Key``."""
    ctx = request.app[CTX]
    received = perf_counter()
    settings = ctx.settings
    settings.refresh()
    refuse = settings.faults.get("refuse")
    if refuse is not None and refuse.hits(ctx.rng):
        ctx.count_fault("refuse")
        return _refuse_handshake(ctx, 503, "service unavailable (injected)")
    slow = settings.faults.get("slow_handshake")
    if slow is not None and slow.hits(ctx.rng):
        ctx.count_fault("slow_handshake")
        await asyncio.sleep(slow.ms / 1000.0)
    if not _api_key_ok(ctx, request):
        return _refuse_handshake(ctx, 401, "invalid API key")
    token = request.query.get("token") or _bearer(request)
    if not token:
        return _refuse_handshake(ctx, 401, "token required")
    try:
        claims = ctx.authority.verify(token)
    except TokenRejected as exc:
        return _refuse_handshake(ctx, 401, str(exc))
    consultation_id = request.query.get("consultation_id", "")
    owner = ctx.authority.consultation_owner(consultation_id)
    if owner is None and ctx.config.strict:
        return _refuse_handshake(ctx, 404, "consultation not found")
    user_id = str(claims["sub"])
    if owner is not None and owner != user_id:
        return _refuse_handshake(ctx, 403, "consultation belongs to another user")

    ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=MAX_CLIENT_MESSAGE,
                               timeout=CLOSE_HANDSHAKE_TIMEOUT_S)
    conn_id = ctx.next_id("c")
    ws.headers["X-Connection-Id"] = conn_id
    await ws.prepare(request)
    arrivals = None
    if ctx.ground_truth is not None:
        arrivals = stamp_arrivals(request.transport)
        ctx.ground_truth.write({"event": "open", "conn": conn_id, "t": perf_counter(),
                                "handshake_received": received, "process": ctx.process_index,
                                "consultation_id": consultation_id, "user_id": user_id,
                                "arrival_clock": None if arrivals is None else "kernel"})
    exp = claims.get("exp")
    token_exp = float(exp) if isinstance(exp, int | float) else None
    await ConsultationConnection(ctx, ws, request, conn_id, token_exp, arrivals).run()
    return ws


def build_app(ctx: TargetContext) -> web.Application:
    app = web.Application(middlewares=[restart_window], client_max_size=MAX_CLIENT_MESSAGE)
    app[CTX] = ctx
    app.router.add_get("/health", health)
    app.router.add_post("/auth/login", login)
    app.router.add_post("/auth/refresh", refresh)
    app.router.add_post("/consultations", create_consultation)
    app.router.add_get("/ws/consultation", consultation_socket)
    add_admin_routes(app, CTX)
    return app
