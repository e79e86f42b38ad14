"""Workspace files (spec §14 Files API) through a per-backend file store.

A :class:`FileStore` gives access to the four roots a runtime sees — ``/configs``, ``/workspace``,
``/home``, ``/plugins`` — of one workspace: list (depth 1–5), read, write, write a set, delete.
Writes and deletes always target ``/configs``, as in the original; the other roots are read-only
through the API, but for the chat uploads the platform itself writes (:mod:`workspaces.chat`).
:func:`store_for` picks the store of the workspace's backend; container-backed stores come
with the Docker backend (a provisioner offering ``file_store(workspace)`` takes over).

**Host-directory store** (this build). Each root maps to its own directory on the platform host::

    MOLECULE_HOME/workspaces/<id>/configs     ← /configs (config.yaml, system-prompt.md, skills/…)
    MOLECULE_HOME/workspaces/<id>/workspace   ← /workspace
    MOLECULE_HOME/workspaces/<id>/home        ← /home
    MOLECULE_HOME/workspaces/<id>/plugins     ← /plugins

A local-process runtime gets ``…/configs`` as its ``WORKSPACE_CONFIG_PATH`` (see
:func:`host_root_dir`). ``replace`` answers ``"source":"host"`` for this store.

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

import io
import os
import posixpath
import shutil
import tempfile
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path

import yaml
from django.conf import settings

from molecule_site.errors import ApiError
from workspaces import selectors
from workspaces.models import Workspace
from workspaces.provisioners import get_provisioner
from workspaces.templates import (
    CONFIG_FILE,
    MAX_FILE_BYTES,
    default_config_yaml,
    rel_path_is_valid,
    template_dir_for,
)

CONFIGS = "/configs"
ROOTS = (CONFIGS, "/workspace", "/home", "/plugins")
MAX_DEPTH = 5
MAX_SET_FILES = 200
MAX_LIST_ENTRIES = 5000
WALK_DEPTH = 32  # whole-tree walks (seeding, bundles); listings stay at MAX_DEPTH
SKIPPED_NAMES = frozenset({".git", "__pycache__", "node_modules", ".DS_Store"})
HOST_SOURCE = "host"


class FileTooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


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


# --- one directory, confined ---------------------------------------------------------------------------

class Tree:
    """A directory whose files are reached only by validated relative paths that stay inside it."""

    def __init__(self, base: Path):
        self.base = Path(base)

    def exists(self) -> bool:
        return self.base.is_dir()

    @cached_property
    def real_base(self) -> Path:
        return self.base.resolve()

    def _inside(self, target: Path) -> bool:
        return target == self.real_base or self.real_base in target.parents

    def resolve(self, rel: str) -> Path:
        """The real path of ``rel`` (symlinks followed); outside the tree → 400 ``invalid path``."""
        target = (self.real_base / rel).resolve()
        if not self._inside(target):
            raise ApiError("invalid path")
        return target

    def list(self, path: str = "", depth: int = 1) -> list[dict]:
        """``[{path, size, dir}]`` below ``path``, pre-order, paths relative to the tree's base."""
        start = self.resolve(path) if path else self.real_base
        entries: list[dict] = []
        if start.is_dir():
            self._walk(start, path, depth, entries)
        return entries

    def _walk(self, directory: Path, prefix: str, depth: int, entries: list[dict]) -> None:
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for child in children:
            if len(entries) >= MAX_LIST_ENTRIES:
                return
            if child.name in SKIPPED_NAMES:
                continue
            rel = posixpath.join(prefix, child.name) if prefix else child.name
            try:
                if child.is_symlink():
                    real = Path(child.path).resolve()
                    if not self._inside(real) or not real.exists():
                        continue  # never show (or size) what lies outside the tree
                    is_dir = real.is_dir()
                    entries.append({"path": rel, "size": 0 if is_dir else real.stat().st_size, "dir": is_dir})
                    continue  # symlinked directories are not descended (no loops)
                is_dir = child.is_dir(follow_symlinks=False)
                entries.append({"path": rel, "size": 0 if is_dir else child.stat(follow_symlinks=False).st_size,
                                "dir": is_dir})
            except OSError:
                continue
            if is_dir and depth > 1:
                self._walk(Path(child.path), rel, depth - 1, entries)

    def read(self, rel: str) -> bytes:
        """The bytes of a regular file; FileNotFoundError when absent, FileTooLarge beyond the cap."""
        target = self.resolve(rel)
        if not target.is_file():
            raise FileNotFoundError(rel)
        size = target.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileTooLarge(size)
        with open(target, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FileTooLarge(len(data))
        return data

    def open(self, rel: str):
        """A binary handle on a regular file (the caller closes it); FileNotFoundError otherwise."""
        target = self.resolve(rel)
        if not target.is_file():
            raise FileNotFoundError(rel)
        # resolve() followed every link: a link in its place now was swapped in meanwhile
        return os.fdopen(os.open(target, os.O_RDONLY | os.O_NOFOLLOW), "rb")

    def write(self, rel: str, data: bytes) -> None:
        """Atomically replace ``rel`` with ``data`` (see :meth:`write_from`)."""
        self.write_from(rel, io.BytesIO(data))

    def write_from(self, rel: str, source) -> None:
        """Atomically replace ``rel`` with what the binary file ``source`` holds, copied in chunks
        (temp file + rename); parents are created inside the tree."""
        self.base.mkdir(parents=True, exist_ok=True)
        target = self.resolve(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.resolve(rel) != target:  # a directory on the way was swapped for a symlink meanwhile
            raise ApiError("invalid path")
        if target.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(source, handle)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def delete(self, rel: str) -> None:
        """Remove a file, a symlink (not its target) or a directory tree; a missing path is fine."""
        parent = self.resolve(posixpath.dirname(rel)) if posixpath.dirname(rel) else self.real_base
        target = parent / posixpath.basename(rel)
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)

    def files(self, path: str = "") -> list[str]:
        """Relative paths of every file below ``path``, at any depth (within the listing cap)."""
        return [entry["path"] for entry in self.list(path, WALK_DEPTH) if not entry["dir"]]


# --- stores -----------------------------------------------------------------------------------------------

class FileStore(ABC):
    """One workspace's files, whatever holds them (host directory, container, VM)."""

    source: str  # what ``PUT /files`` reports as ``source``

    @abstractmethod
    def has_root(self, root: str) -> bool:
        """Whether the workspace has this root of its own (``/configs``: else the template shows)."""

    @abstractmethod
    def list(self, root: str, path: str, depth: int) -> list[dict]:
        """``[{path, size, dir}]`` below ``path`` of ``root``; ``[]`` when absent."""

    @abstractmethod
    def read(self, root: str, path: str) -> bytes:
        """Raises FileNotFoundError / FileTooLarge; ApiError ``invalid path`` on an escape."""

    @abstractmethod
    def open(self, root: str, path: str):
        """A binary handle on ``<root>/<path>`` for streaming; FileNotFoundError when absent."""

    @abstractmethod
    def write(self, path: str, data: bytes) -> None:
        """Write ``/configs/<path>``."""

    @abstractmethod
    def write_from(self, root: str, path: str, source) -> None:
        """Write ``<root>/<path>`` from a binary file object (the platform's own writes outside
        ``/configs``, such as chat uploads)."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Delete ``/configs/<path>`` (file or directory); missing is not an error."""

    @abstractmethod
    def seed(self, template: Path | None) -> None:
        """Give the workspace its own ``/configs``, as a copy of ``template`` when there is one."""

    @abstractmethod
    def discard(self) -> None:
        """Remove everything the store holds for the workspace (undoes a failed import)."""


def host_root_dir(workspace_id, root: str = CONFIGS) -> Path:
    """Where a root of a workspace lives on the platform host (see the module docstring)."""
    return Path(settings.MOLECULE_HOME) / "workspaces" / str(workspace_id) / root.strip("/")


class HostDirectoryStore(FileStore):
    """The roots of a workspace as directories under ``MOLECULE_HOME/workspaces/<id>/``."""

    source = HOST_SOURCE

    def __init__(self, workspace_id):
        self.workspace_id = workspace_id

    def tree(self, root: str) -> Tree:
        return Tree(host_root_dir(self.workspace_id, root))

    def has_root(self, root):
        return self.tree(root).exists()

    def list(self, root, path, depth):
        return self.tree(root).list(path, depth)

    def read(self, root, path):
        return self.tree(root).read(path)

    def open(self, root, path):
        return self.tree(root).open(path)

    def write(self, path, data):
        self.tree(CONFIGS).write(path, data)

    def write_from(self, root, path, source):
        self.tree(root).write_from(path, source)

    def delete(self, path):
        self.tree(CONFIGS).delete(path)

    def seed(self, template):
        """Copy the template's regular files (no symlinks, no skipped names) into ``/configs``.

        Built in a sibling directory and renamed into place: a concurrent seed loses cleanly.
        """
        target = host_root_dir(self.workspace_id, CONFIGS)
        if target.is_dir():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".seed-", dir=target.parent))
        try:
            if template is not None:
                source = Tree(template)
                for rel in source.files():
                    try:
                        data = source.read(rel)
                    except (OSError, FileTooLarge):
                        continue
                    Tree(staging).write(rel, data)
            try:
                os.rename(staging, target)
            except OSError:
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self):
        shutil.rmtree(host_root_dir(self.workspace_id).parent, ignore_errors=True)


def store_for(workspace: Workspace) -> FileStore:
    """The file store of the workspace's backend; the host directory unless the backend has its own."""
    factory = getattr(get_provisioner(), "file_store", None)
    store = factory(workspace) if factory is not None else None
    return store if store is not None else HostDirectoryStore(workspace.id)


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


def _own_configs(workspace: Workspace) -> FileStore:
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
        _own_configs(workspace).write(path, data)
    except OSError as exc:
        # strerror only: the full message would reveal the host path.
        raise ApiError(f"failed to write file: {exc.strerror or 'write failed'}", status=500) from None
    return {"status": "saved", "path": path}


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
    store = _own_configs(workspace)
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
        _own_configs(workspace).delete(path)
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
