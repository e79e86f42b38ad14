"""The OTLP/HTTP trace receiver and the trace / transcript routes (spec §19 "Traces / transcript").

``POST /otlp/v1/traces`` is where runtimes export their spans (OTLP/HTTP, protobuf or JSON). A
workspace bearer token is the only credential: every span is stored under THAT token's
workspace, whatever the payload's resource claims. Answers as OTLP says: 200 with an (empty)
``ExportTraceServiceResponse`` in the request's encoding, ``partial_success`` naming the spans
it refused; 400 for a body that is not an export request, 413 above ``TRACE_MAX_BODY_BYTES``
(the declared length is refused before a byte is read, the ASGI handler cuts a longer chunked
body), 415 for other content types. It is a plain async view: one token lookup and one insert
on the event loop.
"""

from __future__ import annotations

import gzip
import zlib

from django.conf import settings
from django.http import HttpResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response

from molecule_site.api import Api, async_api, query_int
from molecule_site.errors import ApiError
from molecule_site.wire import error_response, json_response, not_found_response
from registry import services as registry_services
from registry.auth import WorkspaceAuth, bearer_token, operator_principal
from traces import otlp, selectors, services
from workspaces.selectors import workspace_get

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
INVALID_PAYLOAD = "invalid OTLP payload"


def _too_large() -> HttpResponse:
    return error_response("request body too large", 413, max_bytes=settings.TRACE_MAX_BODY_BYTES)


def _inflate(body: bytes, encoding: str, limit: int) -> bytes | None:
    """``body`` decoded from ``Content-Encoding`` (gzip/deflate, as OTLP exporters may send), at
    most ``limit`` bytes; None when the result would be larger. ``ValueError`` when corrupt."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ValueError(f"unsupported content encoding {encoding}")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(str(exc)) from None
    return None if len(data) > limit else data


@async_api("POST")
async def _receive(request):
    content_type = request.content_type or ""
    if content_type not in (PROTOBUF, JSON):
        return error_response(f"unsupported content type {content_type or '(none)'}: use {PROTOBUF} or {JSON}", 415)
    limit = settings.TRACE_MAX_BODY_BYTES
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            return _too_large()
    except ValueError:
        pass
    token = bearer_token(request)
    if token is None:
        return error_response("missing workspace auth token", 401)
    workspace_id = await registry_services.atoken_validate(token=token)
    if workspace_id is None:
        return error_response("invalid workspace auth token", 401)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _too_large()
    try:
        body = _inflate(body, request.headers.get("Content-Encoding", "").strip().lower(), limit)
    except ValueError:
        return error_response(INVALID_PAYLOAD, 400)
    if body is None:
        return _too_large()
    try:
        decoded = otlp.decode_protobuf(body) if content_type == PROTOBUF else otlp.decode_json(body)
    except otlp.OtlpError:
        return error_response(INVALID_PAYLOAD, 400)
    await services.aspans_receive(workspace_id=workspace_id, rows=decoded.spans)
    if content_type == PROTOBUF:
        return HttpResponse(otlp.protobuf_response(decoded), content_type=PROTOBUF)
    return json_response(otlp.json_response_body(decoded))


class OtlpTracesView(View):
    """``POST /otlp/v1/traces``; every other method is gin's 404 (no ``Allow`` oracle)."""

    http_method_names = ["post"]
    max_body_bytes = settings.TRACE_MAX_BODY_BYTES  # enforced by molecule_site.handler before Django reads it

    async def post(self, request):
        return await _receive(request)

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = not_found_response()
        if self.view_is_async:
            async def answer():
                return response
            return answer()
        return response


otlp_traces = csrf_exempt(OtlpTracesView.as_view())


# --- GET /workspaces/:id/traces, /traces/:trace_id, /transcript --------------------------------------

LIMIT_ERROR = f"limit must be an integer from 1 to {selectors.MAX_LIMIT}"


def _workspace(workspace_id):
    workspace = workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


def _viewer(request, workspace) -> object | None:
    """None for an operator (sees every span's attributes), else the workspace reading as itself."""
    return None if operator_principal(request) is not None else workspace.id


class WorkspaceTracesApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        limit = query_int(request, "limit", selectors.DEFAULT_LIMIT)
        if limit is None or not 1 <= limit <= selectors.MAX_LIMIT:
            raise ApiError(LIMIT_ERROR)
        workspace = _workspace(workspace_id)
        return Response(selectors.workspace_traces(workspace.id, limit=limit))


class WorkspaceTraceApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id, trace_id):
        workspace = _workspace(workspace_id)
        parsed = selectors.parse_trace_id(trace_id)
        if parsed is None:
            raise ApiError("invalid trace ID: want 32 hex characters")
        tree = selectors.trace_tree(workspace.id, parsed, visible_to=_viewer(request, workspace))
        if tree is None:
            raise ApiError("trace not found", status=404)
        return Response(tree)


class WorkspaceTranscriptApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        since = query_int(request, "since", None)
        limit = query_int(request, "limit", None)
        if "since" in request.query_params and (since is None or since < 0):
            raise ApiError("since must be a non-negative integer")
        if "limit" in request.query_params and (limit is None or limit < 1):
            raise ApiError("limit must be a positive integer")
        workspace = _workspace(workspace_id)
        # The caller's own workspace token goes on to the runtime (it guards /transcript with it).
        token = bearer_token(request)
        bearer = token if token and operator_principal(request) is None else None
        return Response(services.transcript_fetch(workspace=workspace, since=since, limit=limit, bearer=bearer))
