"""File stores: where a workspace's files live, behind one interface (the Files API's backend).

A :class:`FileStore` gives access to the four roots a runtime sees — ``/configs``, ``/workspace``,
``/home``, ``/plugins`` — of one workspace: list (depth 1–5), read, write, write a set, delete.
Each provisioner backend names its store (``Provisioner.file_store``): the host directories
below for local processes and for a platform that runs nothing itself, the container's volumes
for Docker. This module sits with the provisioner port, below everything that uses it.

**Host-directory store.** Each root maps to its own directory on the platform host::

    MOLECULE_HOME/workspaces/<id>/configs     ← /configs (config.yaml, system-prompt.md, skills/…)
    MOLECULE_HOME/workspaces/<id>/workspace   ← /workspace
    MOLECULE_HOME/workspaces/<id>/home        ← /home
    MOLECULE_HOME/workspaces/<id>/plugins     ← /plugins

A local-process runtime gets ``…/configs`` as its ``WORKSPACE_CONFIG_PATH`` (see
:func:`host_root_dir`). ``replace`` answers ``"source":"host"`` for this store.

**Safety and limits.** Every path the Files API passes here was checked by its rel-path rule;
the resolved path must also stay inside the root directory: a symlink pointing outside is refused
(400 ``invalid path``) and skipped when listing. Single files are capped at 1 MiB
(:class:`FileTooLarge`), a listing at 5000 entries.

**Unreachable stores.** A store whose backend cannot be reached at all (the Docker engine down
or unreachable) raises :class:`StoreUnavailable`, an ``OSError`` like every other failure, so
callers that treat any ``OSError`` alike keep working; those that answer for it on the wire
(the plugin routes: 503, as the terminal) tell it apart.
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

from django.conf import settings

from molecule_site.errors import ApiError
from workspaces.templates import MAX_FILE_BYTES

CONFIGS = "/configs"
ROOTS = (CONFIGS, "/workspace", "/home", "/plugins")
MAX_LIST_ENTRIES = 5000
WALK_DEPTH = 32  # whole-tree walks (seeding, bundles); listings stay at the Files API's depth cap
SKIPPED_NAMES = frozenset({".git", "__pycache__", "node_modules", ".DS_Store"})
HOST_SOURCE = "host"
# The token file provisioning writes into /configs: never shown by the canvas, never bundled.
TOKEN_FILE = ".auth_token"


class StoreUnavailable(OSError):
    """The store's backend cannot be reached (``strerror`` says which, e.g. ``docker not available``)."""


class FileTooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


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
