"""API: injected faults over HTTP, the same engine as the Python fixture's ``faults``.

``POST /faults`` takes ``{"protocol", "command", "action", ...}`` (``action`` one of fail, delay,
drop, strip-starttls, tls; the last two take no command) and answers ``201 {"id"}``; a ``tls``
fault names a TLS service as its protocol (``imaps``, ``submission``, ...) and a
``certificate`` (``expired``, ``wrong-host``, ...);
``GET /faults`` lists the faults still waiting to fire (with ``hits``, how often each fired);
``DELETE /faults/{id}`` withdraws one, ``DELETE /faults`` all. The body is checked field by
field here, so a bad request is a 400 naming the field; the injector checks the rest (reply
forms, counts) and its ``ValueError`` is a 400 too.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from mailsrv.faults import (
    PROTOCOLS,
    STARTTLS_REFUSALS,
    TLS_CERTIFICATES,
    TLS_SERVICES,
    Fault,
    FaultInjector,
    FaultKind,
)
from mailsrv.web.api_request import ApiError, ascii_int, ctx_of, json_body

routes = web.RouteTableDef()

#: The fields each action takes (besides protocol, command and action).
_COMMON = {"times", "user", "match"}
FIELDS: dict[str, set[str]] = {
    "fail": _COMMON | {"reply"},
    "delay": _COMMON | {"seconds"},
    "drop": _COMMON | {"after_bytes"},
    "strip-starttls": {"user"},
    "tls": {"certificate", "times"},
}


def fault_dict(fault: Fault) -> dict[str, object]:
    """A fault as the API shows it."""
    out: dict[str, object] = {
        "id": fault.id,
        "protocol": fault.protocol,
        "command": fault.command,
        "action": fault.kind.value,
        "times": fault.times,
        "hits": fault.hits,
        "user": fault.user,
        "match": fault.match,
    }
    if fault.kind is FaultKind.FAIL:
        out["reply"] = fault.reply
    elif fault.kind is FaultKind.DELAY:
        out["seconds"] = fault.seconds
    elif fault.kind is FaultKind.DROP:
        out["after_bytes"] = fault.after_bytes
    elif fault.kind is FaultKind.TLS:
        out["certificate"] = fault.certificate
        del out["command"], out["user"], out["match"]
    return out


def fault_body(fault: Fault) -> dict[str, object]:
    """The ``POST /faults`` body that arms ``fault`` again (``add_fault``): how a replaced
    console of ``--workers`` gets its faults back (``mailsrv.workers.shared_faults``)."""
    body: dict[str, object] = {"protocol": fault.protocol, "action": fault.kind.value}
    if fault.kind is FaultKind.TLS:
        body.update(certificate=fault.certificate, times=fault.times)
        return body
    body["user"] = fault.user
    if fault.kind is FaultKind.STRIP_STARTTLS:
        return body
    body.update(command=fault.command, times=fault.times, match=fault.match)
    if fault.kind is FaultKind.FAIL:
        body["reply"] = fault.reply
    elif fault.kind is FaultKind.DELAY:
        body["seconds"] = fault.seconds
    else:
        body["after_bytes"] = fault.after_bytes
    return body


def _text(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def _count(body: dict[str, object], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return value


def _seconds(body: dict[str, object]) -> float:
    value = body.get("seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ApiError(400, "seconds must be a number between 0 and 3600")
    return float(value)


def add_fault(faults: FaultInjector, body: dict[str, object]) -> Fault:
    """Add the fault ``body`` describes (raises ``ApiError`` 400 naming the bad field)."""
    action = _text(body, "action")
    if action not in FIELDS:
        raise ApiError(400, f"action must be one of {', '.join(FIELDS)}")
    protocols = TLS_SERVICES if action == "tls" else PROTOCOLS
    protocol = _text(body, "protocol")
    if protocol is None or protocol.lower() not in protocols:
        raise ApiError(400, f"protocol must be one of {', '.join(protocols)}")
    unknown = sorted(set(body) - {"protocol", "action", "command"} - FIELDS[action])
    if unknown:
        raise ApiError(400, f"unknown field for a {action} fault: {unknown[0]}")
    if action == "tls":
        return _add_tls(faults, protocol, body)
    user = _text(body, "user")
    if action == "strip-starttls":
        if protocol.lower() not in STARTTLS_REFUSALS:
            raise ApiError(400, f"protocol must be one of {', '.join(STARTTLS_REFUSALS)}")
        try:
            return faults.strip_starttls(protocol, user=user)
        except ValueError as exc:  # the workers' shared table is full
            raise ApiError(400, str(exc)) from None
    command = _text(body, "command")
    if not command or not command.strip():
        raise ApiError(400, "command must be a command name, or '*' for any")
    times: int | None = 1
    if "times" in body:
        times = _count(body, "times")
        if times == 0:
            raise ApiError(400, "times must be a positive integer, or null for every time")
    match = _text(body, "match")
    try:
        if action == "fail":
            reply = _text(body, "reply")
            return faults.fail(protocol, command, reply, times, user=user, match=match)
        if action == "delay":
            seconds = _seconds(body)
            return faults.delay(protocol, command, seconds, times, user=user, match=match)
        after = _count(body, "after_bytes")
        return faults.drop(protocol, command, after, times, user=user, match=match)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _add_tls(faults: FaultInjector, protocol: str, body: dict[str, object]) -> Fault:
    if "command" in body:
        raise ApiError(400, "a tls fault takes no command: it acts on the TLS handshake")
    certificate = _text(body, "certificate")
    if certificate is None or certificate.lower() not in TLS_CERTIFICATES:
        raise ApiError(400, f"certificate must be one of {', '.join(TLS_CERTIFICATES)}")
    times = _count(body, "times")
    if times == 0:
        raise ApiError(400, "times must be a positive integer, or null until removed")
    try:
        return faults.tls(protocol, certificate, times)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


@routes.post("/faults")
async def create_fault(request: web.Request) -> web.Response:
    ctx, body = ctx_of(request), await json_body(request)
    if body.get("action") == "tls" and ctx.tls is None:
        raise ApiError(409, "TLS is off on this server: there is no handshake to break")
    # A TLS fault makes its certificate (an RSA key for weak-key): off the loop.
    fault = await asyncio.to_thread(add_fault, ctx.faults, body)
    if ctx.to_workers is not None:
        ctx.to_workers({"kind": "fault_add", "id": fault.id, "body": body})
    return web.json_response({"id": fault.id, "fault": fault_dict(fault)}, status=201)


@routes.get("/faults")
async def list_faults(request: web.Request) -> web.Response:
    active = ctx_of(request).faults.active
    return web.json_response({"faults": [fault_dict(f) for f in active]})


@routes.delete("/faults")
async def clear_faults(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    ctx.faults.clear()
    if ctx.to_workers is not None:
        ctx.to_workers({"kind": "fault_clear"})
    return web.json_response({"cleared": True})


@routes.delete("/faults/{id}")
async def delete_fault(request: web.Request) -> web.Response:
    try:
        fault_id = ascii_int(request.match_info["id"])
    except ValueError:
        raise ApiError(400, "id must be a fault id (a positive integer)") from None
    ctx = ctx_of(request)
    if not ctx.faults.remove_id(fault_id):
        raise ApiError(404, f"no such fault: {fault_id}")
    if ctx.to_workers is not None:
        ctx.to_workers({"kind": "fault_remove", "id": fault_id})
    return web.json_response({"deleted": fault_id})
