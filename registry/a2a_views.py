"""``POST /workspaces/:id/a2a`` — the A2A proxy's HTTP face (spec §8.4 steps 1–4).

A plain async Django view (DRF has no async views): it reads the request, applies the caller
checks, and hands the rest to :mod:`registry.proxy`. ``message/stream`` answers that the agent
streams come back as ``text/event-stream`` and are relayed as they arrive.
"""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from molecule_site.adb import DatabaseBusy
from molecule_site.wire import datastore_busy_response, error_response, json_response, not_found_response
from registry import auth, proxy
from registry.auth import AuthError

# Spec: "body read capped at 1 MiB". The original silently truncates (and the cut JSON then
# fails as "invalid JSON"); an explicit 413 tells the client what happened instead.
MAX_REQUEST_BYTES = 1 << 20


async def _caller_problem(request, caller_id: str, target_id: str) -> str | None:
    """Step 4, the caller rule (spec §2.3), and who may call with no caller at all.

    Beyond the original outside dev mode: a call with no ``X-Workspace-ID`` (its "canvas"
    caller, which skips the hierarchy) needs an operator — the admin token or a staff session;
    and a caller naming the target itself must prove it is the target (the original skips the
    caller check then, which made ``X-Workspace-ID: <target>`` a way around both rules).
    """
    if not caller_id:
        return await auth.a2a_operator_error(request)
    if caller_id == target_id and auth.dev_mode():
        return None
    return await auth.a2a_caller_auth_error(request, caller_id)


def _has_deadline(request) -> bool:
    """``X-Timeout: N`` with N > 0 (step 1): the caller set its own deadline, so no ceiling."""
    try:
        return int(request.headers.get("X-Timeout", "")) > 0
    except ValueError:
        return False


def _read_body(request) -> bytes | None:
    """The body, or None when it is over 1 MiB (step 2)."""
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_REQUEST_BYTES:
            return None
    except ValueError:
        pass
    body = request.read(MAX_REQUEST_BYTES + 1)
    return None if len(body) > MAX_REQUEST_BYTES else body


def _http_response(result: proxy.ProxyResult) -> HttpResponse:
    if result.stream is not None:
        response = StreamingHttpResponse(result.stream, status=result.status, content_type=result.content_type)
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    else:
        response = HttpResponse(result.body, status=result.status, content_type=result.content_type)
    for name, value in result.headers.items():
        response[name] = value
    return response


@csrf_exempt
async def workspace_a2a(request, workspace_id: str):
    if request.method != "POST":
        return not_found_response()
    caller_deadline = _has_deadline(request)
    body = _read_body(request)
    if body is None:
        return error_response("request body too large", 413)
    caller_id = request.headers.get("X-Workspace-ID", "")
    if proxy.is_system_caller(caller_id):
        return error_response("invalid caller ID", 403)
    try:
        problem = await _caller_problem(request, caller_id, workspace_id)
    except DatabaseBusy:
        return datastore_busy_response()
    except AuthError as exc:  # a CSRF failure, or the datastore down during the caller probe
        return json_response(exc.detail, status=exc.status_code)
    if problem:
        return error_response(problem, 401)
    result = await proxy.proxy_a2a_detached(
        target_id=workspace_id, caller_id=caller_id or None, body=body, caller_deadline=caller_deadline,
        allow_stream=True, traceparent=request.headers.get("traceparent"),
    )
    return _http_response(result)
