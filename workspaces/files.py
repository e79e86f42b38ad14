"""Workspace files (spec §14 Files API) through a per-backend file store.

A :class:`FileStore` gives access to the four roots a runtime sees — ``/configs``, ``/workspace``,
``/home``, ``/plugins`` — of one workspace: list (depth 1–5), read, write, write a set, delete.
Writes and deletes always target ``/configs``, as in the original; the other roots are read-only
through the API, but for the chat uploads the platform itself writes (:mod:`workspaces.chat`).
:func:`store_for` asks the workspace's backend for its store (:mod:`workspaces.filestores`:
host directories for local processes, the container's volumes for Docker).

Which directory or volume holds each root is the store's business (see its module); the
host store answers ``"source":"host"`` to ``PUT /files``, the container store ``"container"``.

**Template fallback.** While a workspace has no ``/configs`` directory of its own, reads and lists
of ``/configs`` show the template it resolves to (:func:`workspaces.templates.template_dir_for`),
as the original does for a workspace without a running container; a workspace with neither
answers ``[]`` / ``file not found (container offline, no template)``. The original applies the
fallback whatever ``root`` says; here it applies to ``/configs`` only, since the template is a
config directory. The first write or delete copies the template into the workspace's own
directory before changing it (copy-on-write), so editing one file never hides the others.

**Safety and limits.** Every path passes the spec's rel-path rule (400 ``invalid path``) and the
resolved path must stay inside the root directory: a symlink pointing outside is refused (400
``invalid path``) and skipped when listing. Single files are capped at 1 MiB for reads and
writes (413 ``file too large``), a set write at 200 files (400 ``too many files (N), max 200``),
a listing at 5000 entries. Hidden files and directories are listed and readable (the runtime
keeps dotfiles in /configs) but never leave through a bundle (see ``bundles``).
"""

from __future__ import annotations

import contextlib
import posixpath

import yaml

from molecule_site.errors import ApiError
from workspaces import selectors
from workspaces.filestores import CONFIGS, ROOTS, WALK_DEPTH, FileStore, FileTooLarge, StoreUnavailable, Tree
from workspaces.models import Workspace
from workspaces.provisioners import get_provisioner
from workspaces.templates import (
    CONFIG_FILE,
    MAX_FILE_BYTES,
    default_config_yaml,
    rel_path_is_valid,
    template_dir_for,
)

MAX_DEPTH = 5
MAX_SET_FILES = 200
# What a route that needs the workspace's files answers while its store cannot be reached
# (spec §18 "503 without container"): the terminal's words for the same state.
STORE_UNAVAILABLE = "Docker not available"

# --- input rules -----------------------------------------------------------------------------------

def check_root(root: str | None) -> str:
    root = root or CONFIGS
    if root not in ROOTS:
        raise ApiError("root must be one of: " + ", ".join(ROOTS))
    return root


def check_depth(depth: int | None) -> int:
    if depth is None or not 1 <= depth <= MAX_DEPTH:
        raise ApiError(f"depth must be 1-{MAX_DEPTH}")
    return depth


def check_path(path) -> str:
    """A validated relative path, cleaned (``a//b`` → ``a/b``)."""
    if not rel_path_is_valid(path):
        raise ApiError("invalid path")
    return posixpath.normpath(path)


def _too_large(path: str) -> ApiError:
    return ApiError("file too large", status=413, path=path, max_bytes=MAX_FILE_BYTES)



def store_unavailable() -> ApiError:
    return ApiError(STORE_UNAVAILABLE, status=503)


@contextlib.contextmanager
def store_reachable():
    """Inside: an unreachable store (:class:`StoreUnavailable`) is 503 ``{"error":"Docker not available"}``."""
    try:
        yield
    except StoreUnavailable:
        raise store_unavailable() from None


def store_for(workspace: Workspace) -> FileStore:
    """The file store of the workspace's backend (host directories, a container's volumes)."""
    return get_provisioner().file_store(workspace)


# --- reading /configs with the template fallback ---------------------------------------------------------

class ConfigFiles:
    """A read view of a workspace's ``/configs``: its own store, else its template, else nothing."""

    def __init__(self, workspace: Workspace, store: FileStore | None = None):
        self.store = store or store_for(workspace)
        self.own = self.store.has_root(CONFIGS)
        template = None if self.own else template_dir_for(workspace)
        self.template = Tree(template) if template is not None else None

    @property
    def available(self) -> bool:
        return self.own or self.template is not None

    def list(self, path: str = "", depth: int = 1) -> list[dict]:
        if self.own:
            return self.store.list(CONFIGS, path, depth)
        return self.template.list(path, depth) if self.template else []

    def read(self, path: str) -> bytes:
        if self.own:
            return self.store.read(CONFIGS, path)
        if self.template is None:
            raise FileNotFoundError(path)
        return self.template.read(path)

    def files(self, path: str = "") -> list[str]:
        """Every file below ``path``, at any depth; ``[]`` when absent or unsafe."""
        try:
            return [entry["path"] for entry in self.list(path, WALK_DEPTH) if not entry["dir"]]
        except ApiError:
            return []

    def read_text(self, path: str) -> str | None:
        """The file as text, or None when absent, too large or unsafe."""
        try:
            return self.read(path).decode("utf-8", errors="replace")
        except (OSError, FileTooLarge, ApiError):
            return None

    def config(self) -> dict:
        text = self.read_text(CONFIG_FILE)
        try:
            loaded = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            return {}
        return loaded if isinstance(loaded, dict) else {}


# --- services (the Files API) -------------------------------------------------------------------------------

def _workspace(workspace_id) -> Workspace:
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


def own_configs(workspace: Workspace) -> FileStore:
    """The store, with ``/configs`` materialised from the template before the first change."""
    store = store_for(workspace)
    if not store.has_root(CONFIGS):
        store.seed(template_dir_for(workspace))
    return store


def files_list(*, workspace_id, root: str | None, path: str | None, depth: int | None) -> list[dict]:
    """``GET /workspaces/:id/files?root=&path=&depth=``."""
    root, depth = check_root(root), check_depth(depth)
    path = check_path(path) if path else ""
    workspace = _workspace(workspace_id)
    if root == CONFIGS:
        return ConfigFiles(workspace).list(path, depth)
    return store_for(workspace).list(root, path, depth)


def file_read(*, workspace_id, root: str | None, path: str) -> dict:
    """``GET /workspaces/:id/files/<path>?root=`` → ``{path, content, size}``."""
    root, path = check_root(root), check_path(path)
    workspace = _workspace(workspace_id)
    try:
        if root == CONFIGS:
            view = ConfigFiles(workspace)
            if not view.available:
                raise ApiError("file not found (container offline, no template)", status=404)
            data = view.read(path)
        else:
            data = store_for(workspace).read(root, path)
    except OSError:  # missing, a directory, unreadable
        raise ApiError("file not found", status=404) from None
    except FileTooLarge:
        raise _too_large(path) from None
    # Go turns invalid UTF-8 into U+FFFD when encoding the string; size stays the byte count.
    return {"path": path, "content": data.decode("utf-8", errors="replace"), "size": len(data)}


def _encoded(path: str, content) -> bytes:
    if not isinstance(content, str):
        raise ApiError("invalid request body")
    data = content.encode()
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path)
    return data


def file_write(*, workspace_id, path: str, content) -> dict:
    """``PUT /workspaces/:id/files/<path> {content}``: always ``/configs``."""
    path = check_path(path)
    data = _encoded(path, content)
    workspace = _workspace(workspace_id)
    try:
        own_configs(workspace).write(path, data)
    except OSError as exc:
        # strerror only: the full message would reveal the host path.
        raise ApiError(f"failed to write file: {exc.strerror or 'write failed'}", status=500) from None
    return {"status": "saved", "path": path}


def config_keys_set(*, workspace: Workspace, values: dict, note: str = "") -> FileStore:
    """Set top-level keys of the workspace's ``/configs/config.yaml`` (the org import's
    per-workspace keys over its template's); returns the store written.

    The template is copied in first (copy-on-write, as any write) and its config.yaml rewritten
    with the keys set, headed by ``note`` as a comment (the rewrite drops the template's comments).
    """
    config = ConfigFiles(workspace).config() or yaml.safe_load(default_config_yaml(
        name=workspace.name, description=workspace.role or "", tier=workspace.tier, runtime=workspace.runtime))
    config.update(values)
    text = "".join(f"# {line}\n" for line in note.splitlines()) + yaml.safe_dump(
        config, sort_keys=False, allow_unicode=True, width=100)
    store = own_configs(workspace)
    try:
        store.write(CONFIG_FILE, _encoded(CONFIG_FILE, text))
    except OSError as exc:
        raise ApiError(f"failed to write file: {exc.strerror or 'write failed'}", status=500) from None
    return store


def files_replace(*, workspace_id, files) -> dict:
    """``PUT /workspaces/:id/files {files}``: write a set of files into ``/configs`` (merge).

    As with the original's container copy, files not in the set are kept; a config.yaml is
    generated from the workspace row when none exists afterwards.
    """
    if not isinstance(files, dict):
        raise ApiError("invalid request body")
    if len(files) > MAX_SET_FILES:
        raise ApiError(f"too many files ({len(files)}), max {MAX_SET_FILES}")
    encoded = {check_path(path): _encoded(path, content) for path, content in files.items()}
    workspace = _workspace(workspace_id)
    store = own_configs(workspace)
    try:
        for path, data in encoded.items():
            store.write(path, data)
        if not _exists(store, CONFIG_FILE):
            config = default_config_yaml(
                name=workspace.name, description=workspace.role or "", tier=workspace.tier, runtime=workspace.runtime
            )
            store.write(CONFIG_FILE, config.encode())
    except OSError:
        raise ApiError("failed to write files to workspace", status=500) from None
    return {"status": "replaced", "workspace": str(workspace.id), "files": len(encoded), "source": store.source}


def _exists(store: FileStore, path: str) -> bool:
    return any(entry["path"] == path and not entry["dir"] for entry in store.list(CONFIGS, "", 1))


def file_delete(*, workspace_id, path: str) -> dict:
    """``DELETE /workspaces/:id/files/<path>``: a file or a directory of ``/configs``."""
    path = check_path(path)
    workspace = _workspace(workspace_id)
    try:
        own_configs(workspace).delete(path)
    except OSError as exc:
        raise ApiError(f"failed to delete file: {exc.strerror or 'delete failed'}", status=500) from None
    return {"status": "deleted", "path": path}


def shared_context(*, workspace_id) -> list[dict]:
    """``GET /workspaces/:id/shared-context``: the files listed under ``shared_context:``.

    Entries that fail the rel-path rule, are missing or exceed the size cap are skipped.
    """
    workspace = _workspace(workspace_id)
    view = ConfigFiles(workspace)
    if not view.available:
        return []
    entries = view.config().get("shared_context")
    result = []
    for path in entries if isinstance(entries, list) else []:
        if not rel_path_is_valid(path):
            continue
        content = view.read_text(posixpath.normpath(path))
        if content is not None:
            result.append({"path": path, "content": content})
    return result
