"""Registry routes (spec §7.1–7.3, §8.2, §8.3). Thin: bind the body, check the caller, call.

Binding is strict like Go's: a field of the wrong JSON type is a bind failure, ``null`` reads as
absent, and a required field rejects absence and its zero value (``""``). Auth is applied inside
the handlers, after binding, exactly where the original applies it.

register, heartbeat and update-card are what every runtime calls every 30 s: they are async
views on the async database driver (``molecule_site.api.async_api``), never a thread.
"""

from __future__ import annotations

import psycopg
from rest_framework.response import Response

from molecule_site.api import OPEN, Api, async_api, parse_json
from molecule_site.errors import ApiError
from registry import discovery, selectors, services
from registry.auth import acheck_registry_token, check_registry_token, dev_mode
from registry.ssrf import register_url_problem

BAD_BODY = "invalid request body"
INT32 = (-(2**31), 2**31 - 1)


# --- binding helpers --------------------------------------------------------------------------------

def _object(request) -> dict:
    data = parse_json(request, BAD_BODY, default={})
    if not isinstance(data, dict):
        raise ApiError(BAD_BODY)
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(data: dict, key: str, check, default=None):
    """``data[key]`` if of the right type; absent or ``null`` gives ``default``."""
    value = data.get(key)
    if value is None:
        return default
    if not check(value):
        raise ApiError(BAD_BODY)
    return value


def _text(data: dict, key: str, *, required: bool = False) -> str:
    value = _field(data, key, lambda v: isinstance(v, str), "")
    if required and not value:
        raise ApiError(BAD_BODY)
    return value


def _int32(data: dict, key: str) -> int:
    """A Go ``int`` stored in an INT column: out-of-range values are a bad body here (the
    original fails the UPDATE with a 500)."""
    return _field(data, key, lambda v: _is_int(v) and INT32[0] <= v <= INT32[1], 0)


def _json_value(data: dict, key: str):
    """A required raw-JSON field (``json.RawMessage`` in Go): any JSON value but absent/``null``."""
    if data.get(key) is None:
        raise ApiError(BAD_BODY)
    return data[key]


def _check_discovery_caller(request, workspace_id) -> None:
    """Discovery caller rule (spec §2.3): dev mode bypasses; else the registry rule. Beyond the
    original, a datastore error fails closed (503) rather than open. (The original's CP session
    cookie does not exist here.)"""
    if not dev_mode():
        check_registry_token(request, workspace_id)


async def _known_workspace(workspace_id) -> bool:
    try:
        return await selectors.aworkspace_exists(workspace_id)
    except psycopg.Error:
        raise ApiError("registration failed", status=500) from None


# --- routes -----------------------------------------------------------------------------------------

@async_api("POST")
async def register(request):
    """``POST /registry/register`` (spec §7.1)."""
    data = _object(request)
    workspace_id = _text(data, "id", required=True)
    url = _text(data, "url", required=True)
    agent_card = _json_value(data, "agent_card")
    problem = register_url_problem(url)
    if problem:
        # the spec's string stays the error (clients match it); beyond the original, which never
        # says why (§20.7), ``detail`` names the reason
        raise ApiError(BAD_BODY, detail=problem)
    if not dev_mode() and not await _known_workspace(workspace_id):
        raise ApiError("workspace not found", status=404)  # beyond the original: no self-registration
    await acheck_registry_token(request, workspace_id)
    return await services.workspace_register(workspace_id=workspace_id, url=url, agent_card=agent_card)


@async_api("POST")
async def heartbeat(request):
    """``POST /registry/heartbeat`` (spec §7.2) — the hot path: no serializer, no ORM instance."""
    data = _object(request)
    workspace_id = _text(data, "workspace_id", required=True)
    error_rate = _field(data, "error_rate", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), 0)
    monthly_spend = _field(data, "monthly_spend", _is_int, 0)
    metadata = _field(data, "runtime_metadata", lambda v: isinstance(v, dict), {})
    capabilities = _field(
        metadata, "capabilities",
        lambda v: isinstance(v, dict) and all(isinstance(flag, bool) for flag in v.values()), None,
    )
    idle_timeout = _field(metadata, "idle_timeout_seconds", _is_int)
    beat = {
        "error_rate": float(error_rate),
        "sample_error": _text(data, "sample_error"),
        "active_tasks": _int32(data, "active_tasks"),
        "uptime_seconds": _int32(data, "uptime_seconds"),
        "current_task": _text(data, "current_task"),
        "monthly_spend": monthly_spend,
        "runtime_state": _text(data, "runtime_state"),
        "capabilities": capabilities,
        "idle_timeout_seconds": idle_timeout,
    }
    await acheck_registry_token(request, workspace_id)
    return await services.workspace_heartbeat(workspace_id=workspace_id, **beat)


@async_api("POST")
async def update_card(request):
    """``POST /registry/update-card`` (spec §7.3)."""
    data = _object(request)
    workspace_id = _text(data, "workspace_id", required=True)
    agent_card = _json_value(data, "agent_card")
    await acheck_registry_token(request, workspace_id)
    return await services.workspace_update_card(workspace_id=workspace_id, agent_card=agent_card)


class CheckAccessApi(Api):
    """``POST /registry/check-access`` (open, spec §8.2)."""

    auth_by_method = {"POST": OPEN}

    def post(self, request):
        data = _object(request)
        caller_id = _text(data, "caller_id", required=True)
        target_id = _text(data, "target_id", required=True)
        return Response({"allowed": selectors.can_communicate(caller_id, target_id)})


class DiscoverApi(Api):
    """``GET /registry/discover/:id`` (spec §8.3): the caller is the ``X-Workspace-ID`` header."""

    auth_by_method = {"GET": OPEN}  # the discovery caller rule, in the handler

    def get(self, request, workspace_id):
        caller_id = request.headers.get("X-Workspace-ID", "")
        if not caller_id:
            raise ApiError("X-Workspace-ID header is required")
        _check_discovery_caller(request, caller_id)
        status, body = discovery.workspace_discover(caller_id=caller_id, target_id=workspace_id)
        return Response(body, status=status)


class PeersApi(Api):
    """``GET /registry/:id/peers[?q=]`` (spec §8.3): the caller is ``:id`` itself."""

    auth_by_method = {"GET": OPEN}  # the discovery caller rule, in the handler

    def get(self, request, workspace_id):
        _check_discovery_caller(request, workspace_id)
        peers = selectors.workspace_peers(workspace_id, q=request.query_params.get("q", ""))
        if peers is None:
            raise ApiError("workspace not found", status=404)
        return Response(peers)
