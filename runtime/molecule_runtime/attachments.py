"""Chat attachments on the runtime side (runtime.md §3.5 steps 1 and 10, §7 ``send_message_to_user``).

Attachments live in the workspace's ``/workspace/.molecule/chat-uploads/`` and travel as
``workspace:/workspace/…`` URIs (platform-api.md §14). The runtime sees that ``/workspace`` at
``WORKSPACE_DIR`` (default ``/workspace``, the container mount; the local-process backend
points it at the workspace's host directory).

**Incoming** A2A FileParts become files the adapter can open, listed after the message text as
``"\\n\\nAttached files:\\n- name (mime) at path"``:
- a URI (``workspace:/workspace/…``, ``file:///workspace/…`` or a bare ``/workspace/…``) names
  a file under ``WORKSPACE_DIR``, which must resolve inside it and exist; a ``workspace:`` URI
  not found there (an external agent, another machine) is fetched through the platform's
  ``/chat/download`` into the inbox;
- inline bytes are written to the inbox.
The inbox is ``WORKSPACE_DIR/.molecule/chat-uploads`` when the runtime may write there, else a
directory under the temp dir (a local runtime with a uid of its own only reads its workspace).
Parts that fail (other URI schemes, missing files, over 25 MiB) are listed as unavailable, so
the agent knows something was sent.

**Outgoing** files (``send_message_to_user`` and file parts in replies) are uploaded through the
platform's ``/chat/uploads``, which answers the ``workspace:`` URIs the canvas downloads.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2a.types import Part

logger = logging.getLogger(__name__)

WORKSPACE_ROOT = "/workspace"
UPLOADS_DIR = ".molecule/chat-uploads"
WORKSPACE_SCHEME = "workspace:"
FILE_SCHEME = "file://"
MIB = 1024 * 1024
MAX_FILE_BYTES = 25 * MIB
MAX_TOTAL_BYTES = 50 * MIB
DEFAULT_MIME = "application/octet-stream"

_UNSAFE_CHARS = re.compile(r"[^\w.\- ]")
_MENTIONED_PATH = re.compile(r"(?<![\w/])/workspace/[^\s'\"`<>()\[\]]+")


def workspace_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("WORKSPACE_DIR") or WORKSPACE_ROOT)


def guess_mime(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_MIME


def safe_name(name: str) -> str:
    """A file name without directories, control characters or leading dots (as the platform's)."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = _UNSAFE_CHARS.sub("_", "".join(ch for ch in name if ch.isprintable())).strip().lstrip(".")
    return name[:100] or "file"


def workspace_path(reference: str) -> str | None:
    """The ``/workspace/…`` path a URI or path names (``workspace:``, ``file://`` or bare), else None."""
    for scheme in (WORKSPACE_SCHEME, FILE_SCHEME):
        if reference.startswith(scheme):
            reference = reference[len(scheme):]
            break
    if reference == WORKSPACE_ROOT or reference.startswith(WORKSPACE_ROOT + "/"):
        return reference
    return None


def local_file(reference: str, root: Path) -> Path | None:
    """The regular file under ``root`` (the local ``/workspace``) that ``reference`` names, or None
    when it names nothing there, leads outside it (``..``, a symlink) or does not exist."""
    path = workspace_path(reference)
    if path is None:
        return None
    real_root = root.resolve()
    target = (real_root / path[len(WORKSPACE_ROOT):].lstrip("/")).resolve()
    if real_root not in target.parents or not target.is_file():
        return None
    return target


@dataclass(frozen=True)
class ReceivedFile:
    name: str
    mime_type: str
    path: Path | None  # None: the part could not be made a local file
    problem: str = ""


def describe(files: list[ReceivedFile]) -> str:
    """The text appended to the message for the adapter (runtime.md §3.5 step 1)."""
    if not files:
        return ""
    lines = []
    for file in files:
        where = f"at {file.path}" if file.path is not None else f"unavailable: {file.problem}"
        lines.append(f"- {file.name} ({file.mime_type}) {where}")
    return "\n\nAttached files:\n" + "\n".join(lines)


class ChatFiles:
    """An executor's attachments: the FileParts of incoming A2A messages made local files, and
    local files made FileParts for replies (see the module docstring).

    ``platform`` (a PlatformClient) fetches ``workspace:`` URIs not found locally and uploads
    outgoing files; without one (smoke mode) outgoing files travel inline as bytes.
    """

    def __init__(self, *, root: Path | None = None, platform: Any = None):
        self.root = root if root is not None else workspace_dir()
        self.platform = platform

    def directory(self) -> Path:
        for candidate in (self.root / UPLOADS_DIR, Path(tempfile.gettempdir()) / "molecule-chat-uploads"):
            try:
                candidate.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(candidate, os.W_OK):
                return candidate
        raise OSError("no writable directory for incoming attachments")

    def _new_path(self, name: str) -> Path:
        return self.directory() / f"{uuid.uuid4().hex}-{name}"

    async def receive(self, message: Any) -> list[ReceivedFile]:
        """The file parts of an a2a ``Message`` (1.x protobuf) as local files, in order."""
        received = []
        for part in getattr(message, "parts", None) or []:
            kind = part.WhichOneof("content")
            if kind not in ("raw", "url"):
                continue
            name = safe_name(part.filename or (part.url.rsplit("/", 1)[-1] if kind == "url" else ""))
            mime = part.media_type or guess_mime(name)
            try:
                path = self._save_bytes(name, part.raw) if kind == "raw" else await self._resolve(part.url, name)
            except (OSError, ValueError) as exc:
                logger.info("attachment %s not received: %s", name, exc)
                received.append(ReceivedFile(name, mime, None, str(exc)))
                continue
            received.append(ReceivedFile(name, mime, path))
        return received

    def _save_bytes(self, name: str, data: bytes) -> Path:
        if len(data) > MAX_FILE_BYTES:
            raise ValueError("larger than 25 MiB")
        path = self._new_path(name)
        path.write_bytes(data)
        return path

    async def _resolve(self, uri: str, name: str) -> Path:
        found = local_file(uri, self.root)
        if found is not None:
            return found
        if not uri.startswith(WORKSPACE_SCHEME) or self.platform is None:
            raise ValueError(f"not a file of this workspace: {uri}")
        path = self._new_path(name)
        try:
            await self.platform.download_chat_file(uri, path, max_bytes=MAX_FILE_BYTES)
        except Exception as exc:  # PlatformError, too large: the agent is told, the task goes on
            path.unlink(missing_ok=True)
            raise ValueError(f"could not fetch {uri}: {exc}") from None
        return path

    async def file_part(self, reference: str) -> Part:
        """A FilePart for a reply carrying the local file ``reference`` (uploaded when possible)."""
        [path] = files_to_send([reference], self.root)
        if self.platform is None:
            return Part(raw=path.read_bytes(), filename=path.name, media_type=guess_mime(path.name))
        [uploaded] = await self.platform.upload_chat_files([path])
        return Part(url=uploaded["uri"], filename=uploaded.get("name") or path.name,
                    media_type=uploaded.get("mimeType") or guess_mime(path.name))

    async def reply_parts(self, reply: str) -> list[Part]:
        """FileParts for the ``/workspace/…`` files a reply mentions (runtime.md §3.5 step 10);
        a path that names no file, or one that fails to upload, is left as text."""
        parts = []
        for reference in dict.fromkeys(match.rstrip(".,;:!?") for match in _MENTIONED_PATH.findall(reply)):
            if local_file(reference, self.root) is None:
                continue
            try:
                parts.append(await self.file_part(reference))
            except Exception as exc:  # noqa: BLE001 — the reply still goes out, without this file
                logger.info("not attaching %s: %s", reference, exc)
        return parts


def files_to_send(references: list[str], root: Path | None = None) -> list[Path]:
    """Check what an agent asks to send: readable regular files within the platform's limits.
    ``/workspace/…`` paths (and ``workspace:`` URIs) are read from the local ``/workspace``."""
    root = root if root is not None else workspace_dir()
    paths, total = [], 0
    for reference in references:
        if not isinstance(reference, str) or not reference:
            raise ValueError("attachments must be file paths")
        if workspace_path(reference) is not None:
            path = local_file(reference, root)
        elif Path(reference).is_absolute():
            path = Path(reference)
        else:
            raise ValueError(f"attachments must be absolute paths, not {reference!r}")
        if path is None or not path.is_file():
            raise ValueError(f"attachment not found: {reference}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"attachment {reference} is larger than 25 MiB")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise ValueError("attachments are larger than 50 MiB in total")
        paths.append(path)
    return paths
