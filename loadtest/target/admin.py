"""The admin API: change faults and restart during a run; read counters.

Unauthenticated on purpose (a test target bound to 127.0.0.1 by default); changes go through the
shared control plane, so they reach every server process, whichever one answered.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from loadtest.target.context import TargetContext
from loadtest.target.faults import FAULT_KINDS, parse_fault_value
from loadtest.target.lifecycle import order_restart, sync_control


def _faults_body(ctx: TargetContext) -> dict[str, Any]:
    ctx.settings.refresh()
    return {"faults": {kind: f.text for kind, f in sorted(ctx.settings.faults.items())}}


def _bad(text: str) -> web.Response:
    return web.json_response({"error": text}, status=400)


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def add_admin_routes(app: web.Application, key: web.AppKey[TargetContext]) -> None:
    """Register ``/admin/*`` on ``app``; handlers find the context under ``key``."""

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(_faults_body(request.app[key]))

    async def put_fault(request: web.Request) -> web.Response:
        ctx = request.app[key]
        body = await _body(request)
        if body is None or "value" not in body:
            return _bad('body must be {"value": ...}')
        try:
            fault = parse_fault_value(request.match_info["kind"], body["value"])
        except ValueError as exc:
            return _bad(str(exc))
        ctx.control.set_fault(fault)
        sync_control(ctx)
        return web.json_response(_faults_body(ctx))

    async def delete_fault(request: web.Request) -> web.Response:
        ctx = request.app[key]
        kind = request.match_info["kind"]
        if kind not in FAULT_KINDS:
            return _bad(f"unknown fault kind {kind!r}")
        ctx.control.clear_fault(kind)
        sync_control(ctx)
        return web.json_response(_faults_body(ctx))

    async def restart(request: web.Request) -> web.Response:
        body = await _body(request)
        refuse_s = (body or {}).get("refuse_s", 0)
        share = (body or {}).get("share", 1.0)
        if isinstance(refuse_s, bool) or not isinstance(refuse_s, int | float) or refuse_s < 0:
            return _bad('body must be {"refuse_s": seconds >= 0, "share": 0..1}')
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            return _bad('"share" must be a fraction 0..1 of connections to drop')
        epoch = order_restart(request.app[key], float(refuse_s), float(share))
        return web.json_response({"restart_epoch": epoch, "refuse_s": refuse_s, "share": share})

    async def freeze(request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = (body or {}).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _bad('body must be {"seconds": seconds >= 0}')
        ctx = request.app[key]
        ctx.control.freeze(float(seconds))
        sync_control(ctx)
        return web.json_response({"frozen_s": seconds})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(request.app[key].control.stats())

    app.router.add_get("/admin/faults", get_faults)
    app.router.add_put("/admin/faults/{kind}", put_fault)
    app.router.add_delete("/admin/faults/{kind}", delete_fault)
    app.router.add_post("/admin/restart", restart)
    app.router.add_post("/admin/freeze", freeze)
    app.router.add_get("/admin/stats", stats)
