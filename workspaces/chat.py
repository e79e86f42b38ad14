"""Chat attachments (spec §14 ``/chat/uploads``, ``/chat/download``): files the user and the agent
exchange in the canvas chat, kept in the workspace's file store (:mod:`workspaces.files`).

**Where.** Every attachment is one file in ``/workspace/.molecule/chat-uploads/`` named
``<32 hex>-<sanitized name>``; its URI is ``workspace:`` + that absolute path, the form the
runtime resolves (runtime.md §3.5) and the canvas downloads. The random prefix keeps two uploads
of ``report.pdf`` apart and makes names unguessable from another file's.

**Names** lose any directory part (``/`` and ``\\``), control characters and leading dots (no
hidden files, no ``..``); other characters outside letters, digits, ``.``, ``-``, ``_`` and space
become ``_``; they are cut to 100 characters keeping the extension; an empty result is ``file``.

**Limits.** 25 MiB per file, 50 MiB per request: the upload handler counts while Django parses
the multipart body and refuses (413) at the first byte over, and the whole request is
refused — nothing is stored unless every file fits. The ASGI handler refuses a body longer than
:data:`MAX_BODY_BYTES` before reading it (``ChatUploadsApi.max_body_bytes``).

**Download** serves files inside the chat-uploads directory only — the safe reading of the
spec's "streams a file back": the canvas downloads attachments, and the wider ``/workspace``
stays behind the Files API and its 1 MiB cap. ``path`` is ``workspace:/workspace/…`` or
``/workspace/…``; ``..`` or another directory is 400 ``invalid path``, and so is a symlink
leading out of ``/workspace`` (the store's confinement; the Files API reads ``/workspace`` anyway).

**Backend.** A platform whose provisioner cannot run workspaces (``none``) has nothing that
would read the files: 503 ``workspace container not running``, as the original answers without
a container.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import secrets
import unicodedata

from django.core.files.uploadhandler import FileUploadHandler

from molecule_site.errors import ApiError
from workspaces import selectors
from workspaces.files import FileStore, store_for
from workspaces.models import Workspace
from workspaces.provisioners import get_provisioner
from workspaces.templates import rel_path_is_valid

WORKSPACE_ROOT = "/workspace"
UPLOADS_DIR = ".molecule/chat-uploads"  # relative to WORKSPACE_ROOT
UPLOADS_PATH = f"{WORKSPACE_ROOT}/{UPLOADS_DIR}"
URI_SCHEME = "workspace:"
FIELD = "files"
MIB = 1024 * 1024
MAX_FILE_BYTES = 25 * MIB
MAX_TOTAL_BYTES = 50 * MIB
MAX_BODY_BYTES = MAX_TOTAL_BYTES + MIB  # room for the multipart framing around the files
MAX_NAME_CHARS = 100
DEFAULT_MIME = "application/octet-stream"
PREFIX_HEX = 32

FILE_TOO_LARGE = "file too large (max 25 MiB per file)"
UPLOAD_TOO_LARGE = "upload too large (max 50 MiB in total)"
NO_CONTAINER = "workspace container not running"

_UNSAFE_CHARS = re.compile(r"[^\w.\- ]")
_STORED_NAME = re.compile(rf"[0-9a-f]{{{PREFIX_HEX}}}-(.+)")


def sanitize_name(name: str) -> str:
    """A file name safe to store and to offer back (see the module docstring)."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE_CHARS.sub("_", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME_CHARS:
        stem, ext = posixpath.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[:MAX_NAME_CHARS - len(ext)] + ext
    return name or "file"


def guess_mime(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_MIME


def uri_for(stored_name: str) -> str:
    return f"{URI_SCHEME}{UPLOADS_PATH}/{stored_name}"


def display_name(stored_name: str) -> str:
    """The name without its random prefix (what a download is called)."""
    match = _STORED_NAME.fullmatch(stored_name)
    return match.group(1) if match else stored_name


class UploadLimits(FileUploadHandler):
    """Refuses, while the body is parsed, a file over 25 MiB or a request over 50 MiB (413),
    so an oversized upload is never spooled whole. Goes first in ``request.upload_handlers``."""

    def __init__(self, request=None):
        super().__init__(request)
        self.total = 0
        self.current = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.current = 0

    def receive_data_chunk(self, raw_data, start):
        self.current += len(raw_data)
        self.total += len(raw_data)
        if self.current > MAX_FILE_BYTES:
            raise ApiError(FILE_TOO_LARGE, status=413, name=self.file_name, max_bytes=MAX_FILE_BYTES)
        if self.total > MAX_TOTAL_BYTES:
            raise ApiError(UPLOAD_TOO_LARGE, status=413, max_bytes=MAX_TOTAL_BYTES)
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler (temporary file) builds the uploaded file


# --- services ----------------------------------------------------------------------------------------

def _store(workspace_id) -> tuple[Workspace, FileStore]:
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    if not get_provisioner().available:
        raise ApiError(NO_CONTAINER, status=503)
    return workspace, store_for(workspace)


def check_upload_allowed(*, workspace_id) -> None:
    """The checks to pass before a body is parsed: the workspace exists and has a store."""
    _store(workspace_id)


def chat_upload(*, workspace_id, files: list) -> dict:
    """``POST /workspaces/:id/chat/uploads``: store each uploaded file → ``{"files": [{uri, name,
    mimeType, size}]}``. ``files`` are Django ``UploadedFile`` objects, already within the limits."""
    if not files:
        raise ApiError(f"no files uploaded (multipart field '{FIELD}')")
    if sum(upload.size for upload in files) > MAX_TOTAL_BYTES:
        raise ApiError(UPLOAD_TOO_LARGE, status=413, max_bytes=MAX_TOTAL_BYTES)
    if any(upload.size > MAX_FILE_BYTES for upload in files):
        raise ApiError(FILE_TOO_LARGE, status=413, max_bytes=MAX_FILE_BYTES)
    _workspace, store = _store(workspace_id)
    stored = []
    try:
        for upload in files:
            name = sanitize_name(upload.name)
            stored_name = f"{secrets.token_hex(PREFIX_HEX // 2)}-{name}"
            upload.seek(0)
            store.write_from(WORKSPACE_ROOT, f"{UPLOADS_DIR}/{stored_name}", upload)
            # The client's type when it sent one (the canvas does), else a guess from the name.
            mime = (upload.content_type or "").strip() or guess_mime(name)
            stored.append({"uri": uri_for(stored_name), "name": name, "mimeType": mime, "size": upload.size})
    except OSError as exc:
        raise ApiError(f"failed to store upload: {exc.strerror or 'write failed'}", status=500) from None
    return {"files": stored}


def upload_rel_path(path) -> str:
    """``workspace:/workspace/.molecule/chat-uploads/<name>`` (or without the scheme) → the path
    relative to the chat-uploads directory; 400 ``invalid path`` for anything else."""
    if not isinstance(path, str) or not path:
        raise ApiError("path is required")
    if path.startswith(URI_SCHEME):
        path = path[len(URI_SCHEME):]
    prefix = UPLOADS_PATH + "/"
    rel = path[len(prefix):] if path.startswith(prefix) else ""
    if not rel_path_is_valid(rel):
        raise ApiError("invalid path")
    return posixpath.normpath(rel)


def chat_download(*, workspace_id, path) -> tuple:
    """``GET /workspaces/:id/chat/download?path=`` → ``(binary handle, name, mime type)``."""
    rel = upload_rel_path(path)
    _workspace, store = _store(workspace_id)
    try:
        handle = store.open(WORKSPACE_ROOT, f"{UPLOADS_DIR}/{rel}")
    except OSError:
        raise ApiError("file not found", status=404) from None
    name = display_name(posixpath.basename(rel))
    return handle, name, guess_mime(name)


def uploaded_file_size(*, workspace: Workspace, uri: str) -> int | None:
    """The size of the chat upload a ``workspace:`` URI names, or None when there is no such file
    (or the URI points anywhere else)."""
    try:
        rel = upload_rel_path(uri)
        handle = store_for(workspace).open(WORKSPACE_ROOT, f"{UPLOADS_DIR}/{rel}")
    except (ApiError, OSError):
        return None
    with handle:
        handle.seek(0, 2)
        return handle.tell()
