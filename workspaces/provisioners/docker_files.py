"""A Docker workspace's files: the Files API's store for the Docker backend (spec §14, §16).

Same interface, limits and errors as :class:`workspaces.filestores.HostDirectoryStore` (1 MiB a
file → :class:`FileTooLarge`, a missing file → ``FileNotFoundError``, a path whose real location
leaves its root → 400 ``invalid path``, listings of at most 5000 entries without ``.git``,
``__pycache__``…), with ``"source": "container"``. The roots:

    /configs     the config volume ``ws-<id12>-configs``
    /workspace   the workspace volume or bind mount (none for T1: it has no /workspace)
    /home        inside the running container only (a stopped one shows none)
    /plugins     inside the running container only (likewise)

**Where an operation runs.** On the workspace's container while it runs; otherwise on a helper
container of the workspace image with the same volumes mounted (no network, read-only rootfs,
``sleep`` as its command, removed when the store is dropped and by Docker itself once the sleep
ends, so a crash leaves nothing). Contents move with the engine's archive API (``put_archive``,
``get_archive``); listing, resolving and deleting run a short Python script inside (every
workspace image has Python: it runs the runtime). The engine resolves paths inside the
container's own filesystem, so no link in a volume reaches the platform's host; the script
applies the host store's rule on top (the real path must stay under the root).

Files the platform writes belong to the runtime's user (``uid``: the image's
``molecule.runtime.uid`` label), mode 0644 — ``.auth_token`` 0600.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import posixpath
import secrets
import shutil
import tarfile
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from django.conf import settings
from docker.types import Mount

from molecule_site.docker_engine import ENGINE_ERRORS, MANAGED_LABEL, EngineUnavailable
from molecule_site.errors import ApiError
from workspaces.filestores import (
    CONFIGS,
    MAX_LIST_ENTRIES,
    SKIPPED_NAMES,
    FileStore,
    FileTooLarge,
    StoreUnavailable,
    Tree,
)
from workspaces.templates import MAX_FILE_BYTES

log = logging.getLogger(__name__)

CONTAINER_SOURCE = "container"
WORKSPACE_ROOT = "/workspace"
CONTAINER_ONLY_ROOTS = ("/home", "/plugins")
TOKEN_FILE = ".auth_token"
WORKSPACE_LABEL = "molecule.workspace_id"
INSTANCE_LABEL = "molecule.platform.instance"  # which platform made it (workspaces.provisioners.docker)
HELPER_LABEL = "molecule.platform.helper"
RUNTIME_UID_LABEL = "molecule.runtime.uid"  # set by runtime/Dockerfile
HELPER_SECONDS = 300  # a helper's lifetime if nobody removes it (its command is `sleep`)
# Scripts and prompts written on Windows must still run (a CRLF shebang does not) — spec §16.
LF_SUFFIXES = (".sh", ".py", ".md")
FILE_MODE, TOKEN_MODE, DIR_MODE = 0o644, 0o600, 0o755

# Runs inside the container: python3 -c SCRIPT <op> <root> <rel> <depth> <skipped names json> <limit>.
# Answers one JSON object on stdout; mirrors workspaces.filestores.Tree.
_SCRIPT = r"""
import json, os, shutil, sys
op, root, rel, depth, skip, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), set(json.loads(sys.argv[5])), int(sys.argv[6])
def done(**answer):
    sys.stdout.write(json.dumps(answer))
    sys.exit(0)
if not os.path.isdir(root):
    done(absent=True)
base = os.path.realpath(root)
def inside(path):
    return path == base or path.startswith(base.rstrip("/") + "/")
def resolve(rel):
    path = os.path.realpath(os.path.join(base, rel)) if rel else base
    if not inside(path):
        done(invalid=True)
    return path
def walk(directory, prefix, depth, entries):
    try:
        children = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    for child in children:
        if len(entries) >= limit:
            return
        if child.name in skip:
            continue
        path = prefix + "/" + child.name if prefix else child.name
        try:
            if child.is_symlink():
                real = os.path.realpath(child.path)
                if not inside(real) or not os.path.exists(real):
                    continue
                is_dir = os.path.isdir(real)
                entries.append({"path": path, "size": 0 if is_dir else os.stat(real).st_size, "dir": is_dir})
                continue
            is_dir = child.is_dir(follow_symlinks=False)
            entries.append({"path": path, "size": 0 if is_dir else child.stat(follow_symlinks=False).st_size, "dir": is_dir})
        except OSError:
            continue
        if is_dir and depth > 1:
            walk(child.path, path, depth - 1, entries)
if op == "list":
    start, entries = resolve(rel), []
    if os.path.isdir(start):
        walk(start, rel, depth, entries)
    done(entries=entries)
if op == "stat":
    path = resolve(rel)
    missing, parent = [], os.path.dirname(path)
    while parent != base and inside(parent) and not os.path.lexists(parent):
        missing.append(os.path.relpath(parent, base))
        parent = os.path.dirname(parent)
    kind = "dir" if os.path.isdir(path) else "file" if os.path.isfile(path) else "other" if os.path.lexists(path) else "missing"
    done(base=base, path=path, kind=kind, size=os.path.getsize(path) if kind == "file" else 0, missing=missing[::-1])
if op == "delete":
    parent = resolve(os.path.dirname(rel))
    target = os.path.join(parent, os.path.basename(rel))
    if os.path.islink(target) or os.path.isfile(target):
        os.unlink(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    done(ok=True)
if op == "own":
    done(own=any(name != ".auth_token" for name in os.listdir(base)))
done(error="unknown operation")
"""


@dataclass(frozen=True)
class Placement:
    """Where one workspace's files live in Docker (the backend works it out from the row)."""

    workspace_id: str
    container: str                 # ws-<id12>
    config_volume: str             # ws-<id12>-configs
    workspace_volume: str          # ws-<id>-workspace (whether or not /workspace mounts it now)
    workspace_mount: Mount | None  # its /workspace (that volume or a bind); None for T1
    image: str                     # the helper container's image (it holds the runtime's uid label)
    as_root: bool = False          # the container runs as root (privileged tiers): files are root's

    @property
    def volumes(self) -> list[str]:
        """The named volumes its container mounts (a bind mount is the operator's directory)."""
        named = [self.config_volume]
        if self.workspace_mount is not None and self.workspace_mount["Type"] == "volume":
            named.append(self.workspace_mount["Source"])
        return named

    @property
    def owned_volumes(self) -> list[str]:
        """Every named volume the workspace may have, mounted now or under an earlier tier or
        access: what removing the workspace removes."""
        return [self.config_volume, self.workspace_volume]

    def mounts(self) -> list[Mount]:
        mounts = [Mount(target=CONFIGS, source=self.config_volume, type="volume")]
        if self.workspace_mount is not None:
            mounts.append(self.workspace_mount)
        return mounts


def image_uid(api, image: str) -> int:
    """The uid the image runs its runtime as (label ``molecule.runtime.uid``; root without one)."""
    try:
        labels = (api.inspect_image(image).get("Config") or {}).get("Labels") or {}
    except docker.errors.ImageNotFound:
        return 0
    try:
        return int(labels.get(RUNTIME_UID_LABEL, "0"))
    except ValueError:
        return 0


def volume_labels(workspace_id) -> dict[str, str]:
    return {MANAGED_LABEL: "true", INSTANCE_LABEL: settings.MOLECULE_PLATFORM_INSTANCE, WORKSPACE_LABEL: str(workspace_id)}


def ensure_volume(api, name: str, workspace_id) -> None:
    """Create the named volume (labelled managed) unless it exists."""
    try:
        api.inspect_volume(name)
    except docker.errors.NotFound:
        api.create_volume(name=name, labels=volume_labels(workspace_id))


def volume_exists(api, name: str) -> bool:
    try:
        api.inspect_volume(name)
    except docker.errors.NotFound:
        return False
    return True


def remove_volumes(api, names: Iterable[str]) -> None:
    """Remove the named volumes; missing ones are fine. A volume still held by a container being
    removed is retried for a few seconds (the engine releases it asynchronously)."""
    for name in names:
        for attempt in range(20):
            try:
                api.remove_volume(name, force=True)
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or attempt == 19:
                    raise
                time.sleep(0.25)


# --- tar archives (what put_archive takes) --------------------------------------------------------------

class Archive:
    """A tar archive under construction, in a temporary file (uploads reach 25 MiB); every member
    owned by ``uid``."""

    def __init__(self, uid: int):
        self.uid = uid
        self.buffer = tempfile.TemporaryFile()  # noqa: SIM115 - closed by whoever takes finish()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed in finish()
        self.now = time.time()

    def _info(self, name: str, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid, info.mtime = mode, self.uid, self.uid, self.now
        return info

    def directory(self, name: str) -> None:
        info = self._info(name, DIR_MODE)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)

    def file(self, name: str, data: bytes, mode: int = FILE_MODE) -> None:
        info = self._info(name, mode)
        info.size = len(data)
        self.tar.addfile(info, _BytesReader(data))

    def stream(self, name: str, source, size: int, mode: int = FILE_MODE) -> None:
        info = self._info(name, mode)
        info.size = size
        self.tar.addfile(info, source)

    def finish(self):
        """The archive, rewound, for ``put_archive`` (closed by the caller)."""
        self.tar.close()
        self.buffer.seek(0)
        return self.buffer


class _BytesReader:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset:end]
        self.offset += len(chunk)
        return chunk


def lf_endings(rel: str, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n") if rel.lower().endswith(LF_SUFFIXES) else data


def template_files(template: Path | None) -> dict[str, bytes]:
    """The template's regular files (as the host store seeds them: no skipped names, no links
    leaving it, nothing over 1 MiB), with LF line endings for scripts and Markdown."""
    if template is None:
        return {}
    tree, files = Tree(template), {}
    for rel in tree.files():
        try:
            files[rel] = lf_endings(rel, tree.read(rel))
        except (OSError, FileTooLarge, ApiError):
            continue
    return files


def add_tree(archive: Archive, files: dict[str, bytes]) -> None:
    """``files`` with a directory entry for each parent, parents first."""
    directories = sorted({parent for rel in files for parent in _parents(rel)}, key=lambda d: (d.count("/"), d))
    for directory in directories:
        archive.directory(directory)
    for rel, data in sorted(files.items()):
        archive.file(rel, data)


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def scan_configs(api, container: str) -> tuple[bool, bool]:
    """``(own files, config.yaml)`` of a container's ``/configs``: whether it holds anything but
    ``.auth_token``, and whether ``config.yaml`` is there. Reads only tar headers (the archive API
    works on a container that was created and not started)."""
    stream, _stat = api.get_archive(container, CONFIGS)
    own = config = False
    with _ChunkReader(stream) as reader, tarfile.open(fileobj=reader, mode="r|") as tar:
        for member in tar:
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not name:
                continue  # the directory itself
            if name != TOKEN_FILE:
                own = True
            if name == "config.yaml" and member.isfile():
                config = True
    return own, config


class _ChunkReader:
    """A file object over the SDK's chunk iterator (for tarfile's streaming mode)."""

    def __init__(self, chunks):
        self.chunks, self.pending = iter(chunks), b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += chunk
        if size < 0:
            data, self.pending = self.pending, b""
        else:
            data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- the store --------------------------------------------------------------------------------------------

DOCKER_NOT_AVAILABLE = "docker not available"


@contextlib.contextmanager
def _engine_errors():
    """Engine failures as the OSError the Files API turns into its 500/404 answers (the message is
    the engine's explanation or ``docker not available``: no host paths, no secrets); an engine
    that cannot be reached at all is :class:`StoreUnavailable`."""
    try:
        yield
    except EngineUnavailable:
        raise StoreUnavailable(errno.EIO, DOCKER_NOT_AVAILABLE) from None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            raise FileNotFoundError(errno.ENOENT, "not found") from None
        explanation = str(exc.explanation or exc)[:200]
        if "read-only" in explanation:
            raise OSError(errno.EROFS, "Read-only file system") from None
        raise OSError(errno.EIO, f"docker: {explanation}") from None
    except ENGINE_ERRORS:
        log.warning("Docker call failed", exc_info=True)
        raise StoreUnavailable(errno.EIO, DOCKER_NOT_AVAILABLE) from None


class DockerFileStore(FileStore):
    """The roots of one Docker workspace (see the module docstring)."""

    source = CONTAINER_SOURCE

    def __init__(self, api: Callable[[], object], placement: Placement):
        self._api = api  # the backend's lazily connected low-level client
        self.placement = placement
        self._helper: str | None = None
        self._finalizer = None
        self._uid: int | None = None

    @property
    def uid(self) -> int:
        """Who owns what the platform writes: the runtime's user (the image's label), or root."""
        if self._uid is None:
            self._uid = 0 if self.placement.as_root else image_uid(self._api(), self.placement.image)
        return self._uid

    # --- where to run ------------------------------------------------------------------------------------

    def _running(self) -> bool:
        try:
            state = self._api().inspect_container(self.placement.container)["State"]
        except docker.errors.NotFound:
            return False
        return bool(state.get("Running")) and not state.get("Restarting")

    def _target(self) -> str:
        """The workspace's container while it runs, else this store's helper container."""
        if self._running():
            return self.placement.container
        if self._helper is None:
            self._helper = self._start_helper()
        return self._helper

    def _start_helper(self) -> str:
        api, placement = self._api(), self.placement
        for volume in placement.volumes:
            ensure_volume(api, volume, placement.workspace_id)
        name = f"molecule-files-{placement.workspace_id[:12]}-{secrets.token_hex(4)}"
        try:
            api.inspect_image(placement.image)
        except docker.errors.ImageNotFound:
            raise OSError(errno.EIO, f"workspace image {placement.image} is missing "
                                     "(python manage.py build_workspace_images)") from None
        host_config = api.create_host_config(
            mounts=placement.mounts(), network_mode="none", read_only=True, auto_remove=True,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"}, mem_limit=256 * 1024 * 1024,
            # root in the helper, but only what moving files needs: other users' files in the volumes
            cap_drop=["ALL"], cap_add=["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"],
        )
        created = api.create_container(
            placement.image, command=["sleep", str(HELPER_SECONDS)], name=name, user="0",
            labels={HELPER_LABEL: "files", WORKSPACE_LABEL: placement.workspace_id},
            host_config=host_config, use_config_proxy=False,
        )
        helper = created["Id"]
        self._finalizer = weakref.finalize(self, _drop_helper, self._api, helper)
        api.start(helper)
        return helper

    def close(self) -> None:
        """Remove the helper container now (it would go once this store is dropped anyway)."""
        if self._finalizer is not None:
            self._finalizer()
        self._helper = None

    # --- in-container operations -----------------------------------------------------------------------------

    def _run(self, container: str, op: str, root: str, rel: str = "", depth: int = 1) -> dict:
        api = self._api()
        command = ["python3", "-c", _SCRIPT, op, root, rel, str(depth), json.dumps(sorted(SKIPPED_NAMES)),
                   str(MAX_LIST_ENTRIES)]
        exec_id = api.exec_create(container, command, user="0", stdout=True, stderr=True)["Id"]
        stdout, stderr = api.exec_start(exec_id, demux=True)
        code = api.exec_inspect(exec_id).get("ExitCode")
        try:
            answer = json.loads(stdout or b"")
        except ValueError:
            answer = None
        if code != 0 or not isinstance(answer, dict):
            log.warning("file operation %s in %s failed (exit %s): %s", op, container, code,
                        (stderr or b"")[-500:].decode(errors="replace"))
            if code == 1 and b"Permission denied" in (stderr or b""):
                raise PermissionError(errno.EACCES, "Permission denied")
            raise OSError(errno.EIO, f"file operation failed in the container (exit {code})")
        if answer.get("invalid"):
            raise ApiError("invalid path")
        return answer

    def _backed(self, root: str) -> bool:
        """Whether ``root`` exists for this workspace at all (without starting a helper)."""
        placement = self.placement
        if root == CONFIGS:
            return volume_exists(self._api(), placement.config_volume)
        if root == WORKSPACE_ROOT:
            mount = placement.workspace_mount
            if mount is None:
                return False
            return mount["Type"] == "bind" or volume_exists(self._api(), mount["Source"])
        if root in CONTAINER_ONLY_ROOTS:
            return self._running()
        return False

    def _container_for(self, root: str) -> str:
        if root in CONTAINER_ONLY_ROOTS:
            if not self._running():
                raise FileNotFoundError(errno.ENOENT, "container not running")
            return self.placement.container
        return self._target()

    # --- FileStore ------------------------------------------------------------------------------------------

    def has_root(self, root):
        with _engine_errors():
            if not self._backed(root):
                return False
            if root != CONFIGS:
                return True
            return bool(self._run(self._target(), "own", root).get("own"))

    def list(self, root, path, depth):
        with _engine_errors():
            if not self._backed(root):
                return []
            answer = self._run(self._container_for(root), "list", root, path, depth)
        return answer.get("entries") or []

    def _stat(self, root: str, path: str) -> tuple[str, dict]:
        if not self._backed(root):
            raise FileNotFoundError(errno.ENOENT, "not found")
        container = self._container_for(root)
        answer = self._run(container, "stat", root, path)
        if answer.get("absent"):
            raise FileNotFoundError(errno.ENOENT, "not found")
        return container, answer

    def read(self, root, path):
        with _engine_errors():
            container, answer = self._stat(root, path)
            if answer["kind"] != "file":
                raise FileNotFoundError(path)
            if answer["size"] > MAX_FILE_BYTES:
                raise FileTooLarge(answer["size"])
            stream, stat = self._api().get_archive(container, answer["path"])
            if stat.get("size", 0) > MAX_FILE_BYTES:
                stream.close()
                raise FileTooLarge(stat["size"])
            with _ChunkReader(stream) as reader, tarfile.open(fileobj=reader, mode="r|") as tar:
                member = next(iter(tar), None)
                if member is None or not member.isfile():
                    raise FileNotFoundError(path)  # swapped for a link or a directory meanwhile
                if member.size > MAX_FILE_BYTES:
                    raise FileTooLarge(member.size)
                return tar.extractfile(member).read(MAX_FILE_BYTES + 1)

    def open(self, root, path):
        """The file copied out into a temporary file (seekable; the caller closes it)."""
        with _engine_errors():
            container, answer = self._stat(root, path)
            if answer["kind"] != "file":
                raise FileNotFoundError(path)
            stream, _stat = self._api().get_archive(container, answer["path"])
            copy = tempfile.TemporaryFile()  # noqa: SIM115 - the caller's handle: it closes it
            try:
                with _ChunkReader(stream) as reader, tarfile.open(fileobj=reader, mode="r|") as tar:
                    member = next(iter(tar), None)
                    if member is None or not member.isfile():
                        raise FileNotFoundError(path)
                    shutil.copyfileobj(tar.extractfile(member), copy)
            except BaseException:
                copy.close()
                raise
            copy.seek(0)
            return copy

    def write(self, path, data):
        self.write_from(CONFIGS, path, _BytesReader(data), size=len(data))

    def write_from(self, root, path, source, *, size: int | None = None, mode: int = FILE_MODE):
        with _engine_errors():
            if root == CONFIGS:
                ensure_volume(self._api(), self.placement.config_volume, self.placement.workspace_id)
            elif root == WORKSPACE_ROOT and self.placement.workspace_mount is None:
                raise OSError(errno.EROFS, "Read-only file system")  # T1 has no /workspace
            elif root == WORKSPACE_ROOT and self.placement.workspace_mount["Type"] == "volume":
                ensure_volume(self._api(), self.placement.workspace_mount["Source"], self.placement.workspace_id)
            container, answer = self._stat(root, path)
            if answer["kind"] == "dir":
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            with _spooled(source, size) as (body, length):
                archive = Archive(self.uid)
                for directory in answer["missing"]:
                    archive.directory(directory)
                archive.stream(posixpath.relpath(answer["path"], answer["base"]), body, length, mode)
                with archive.finish() as tar:
                    self._api().put_archive(container, answer["base"], tar)

    def delete(self, path):
        with _engine_errors():
            if not self._backed(CONFIGS):
                return
            self._run(self._target(), "delete", CONFIGS, path)

    def seed(self, template):
        """Give the workspace a config volume of its own, holding a copy of ``template``."""
        with _engine_errors():
            ensure_volume(self._api(), self.placement.config_volume, self.placement.workspace_id)
            container = self._target()
            if self._run(container, "own", CONFIGS).get("own"):
                return
            files = template_files(template)
            if not files:
                return
            archive = Archive(self.uid)
            add_tree(archive, files)
            with archive.finish() as tar:
                self._api().put_archive(container, CONFIGS, tar)

    def discard(self):
        """Remove the workspace's container and named volumes (undoes a failed import)."""
        with _engine_errors():
            self.close()
            _remove_container(self._api, self.placement.container)
            remove_volumes(self._api(), self.placement.owned_volumes)


@contextlib.contextmanager
def _spooled(source, size: int | None):
    """``(file object, length)``: ``source`` as is when its length is known, else copied to a
    temporary file first (tar needs the size up front)."""
    if size is not None:
        yield source, size
        return
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(source, copy)
        length = copy.tell()
        copy.seek(0)
        yield copy, length


def _drop_helper(api: Callable[[], object], helper: str) -> None:
    """A finalizer: never raises (the helper removes itself once its sleep ends anyway)."""
    try:
        _remove_container(api, helper)
    except Exception:
        log.warning("could not remove helper container %s", helper, exc_info=True)


def _remove_container(api: Callable[[], object], container: str) -> None:
    """Force-remove ``container``; gone already (or going: auto-remove) is fine, and an engine that
    cannot be reached is only logged (a helper removes itself once its sleep ends)."""
    try:
        api().remove_container(container, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: its removal is already in progress
            raise
    except (EngineUnavailable, *ENGINE_ERRORS):
        log.warning("could not remove container %s", container, exc_info=True)
