"""Chat attachments on the wire (spec §14): ``POST /workspaces/:id/chat/uploads`` and ``GET
/workspaces/:id/chat/download?path=``, both WorkspaceAuth. Thin: parse, call, answer."""

from __future__ import annotations

from django.core.exceptions import TooManyFilesSent
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http import FileResponse
from django.http.multipartparser import MultiPartParserError
from rest_framework.response import Response

from molecule_site.api import Api
from molecule_site.errors import ApiError
from registry.auth import WorkspaceAuth
from workspaces import chat


class ChatUploadsApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}
    # Read by molecule_site.handler: a longer body is refused before it is received.
    max_body_bytes = chat.MAX_BODY_BYTES

    def initialize_request(self, request, *args, **kwargs):
        # Before authentication: a staff session's CSRF check may read the form, and Django parses
        # a body once, with the handlers in place then.
        request.upload_handlers = [chat.UploadLimits(request), MemoryFileUploadHandler(request),
                                   TemporaryFileUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def post(self, request, workspace_id):
        chat.check_upload_allowed(workspace_id=workspace_id)  # before the body is parsed
        length = request.META.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > chat.MAX_BODY_BYTES:
            raise ApiError(chat.UPLOAD_TOO_LARGE, status=413, max_bytes=chat.MAX_TOTAL_BYTES)
        if not request.content_type.startswith("multipart/form-data"):
            raise ApiError("expected a multipart/form-data body")
        try:
            # Django's own parsing, not DRF's: it streams the parts through the handlers above.
            uploads = request._request.FILES.getlist(chat.FIELD)
        except TooManyFilesSent:
            raise ApiError("too many files in one upload") from None
        except MultiPartParserError:
            raise ApiError("invalid multipart body") from None
        try:
            return Response(chat.chat_upload(workspace_id=workspace_id, files=uploads))
        finally:
            for upload in uploads:
                upload.close()  # a temporary file goes with it


class ChatDownloadApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        handle, name, mime = chat.chat_download(workspace_id=workspace_id, path=request.query_params.get("path"))
        response = FileResponse(handle, as_attachment=True, filename=name, content_type=mime)
        # Served from the canvas's origin: never sniffed or rendered as a page of ours.
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response
