"""Installing plugins into workspaces, and the org allowlist (spec platform-api §18, §19).

**Install** (``POST /workspaces/:id/plugins {"source": "<scheme>://<spec>"}``): the source names
the files — ``local://<name>`` a folder of the registry (``PLUGINS_DIR``), ``github://owner/repo#ref``
a tarball fetched from ``PLUGIN_GITHUB_URL`` (pinned to a ref unless ``PLUGIN_ALLOW_UNPINNED``) —
which are written through the workspace's file store (host directories or the container's
volume) into ``/configs/plugins/<name>/``, replacing an earlier copy. The runtime discovers
plugins there at boot (runtime §8.2: rules, guidelines, skills), so the workspace is restarted
once the install committed, and ``PLUGIN_INSTALLED`` is announced. Names and paths are checked
before anything is read or written: a name is :data:`plugins_app.registry.NAME_RE`, every file
path passes the Files API's rel-path rule.

**Unreachable files.** While the workspace's file store cannot be reached (a Docker workspace
whose engine is down), listing, installing, removing and downloading answer 503
``{"error":"Docker not available"}`` (spec §18 "503 without container", the terminal's words)
rather than a 500 or an empty list that would pass for "nothing installed".

**Allowlist** (``org_plugin_allowlist``): an org is a root workspace and its subtree. An org with
entries may install only those plugins (403 otherwise); an org without entries may install any.
"""

from __future__ import annotations

import io
import re
import tarfile

import httpx
from django.conf import settings
from django.db import transaction

from activity.events import emit
from molecule_site.errors import ApiError
from plugins_app import registry
from plugins_app.models import OrgPluginAllowlist
from workspaces import files, selectors
from workspaces.filestores import CONFIGS, StoreUnavailable
from workspaces.models import Workspace
from workspaces.provisioning import request_restarts
from workspaces.templates import MAX_FILE_BYTES, rel_path_is_valid

SCHEMES = ("github", "local")
PLUGINS_PREFIX = "plugins"
GITHUB_SPEC_RE = re.compile(r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[A-Za-z0-9._-]{1,100})"
                            r"(?:#(?P<ref>[A-Za-z0-9._/-]{1,200}))?$")
MAX_TARBALL_BYTES = 10 * 1024 * 1024


def _workspace(workspace_id) -> Workspace:
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


def org_root_id(workspace: Workspace):
    ancestors = selectors.ancestor_ids(workspace.id)
    return ancestors[-1] if ancestors else workspace.id


# --- installed plugins ------------------------------------------------------------------------------

def _installed(workspace: Workspace) -> list[dict]:
    """What ``/configs/plugins/`` holds; 503 while the file store cannot be reached."""
    with files.store_reachable():
        return _installed_in(files.ConfigFiles(workspace))


def _installed_in(view: files.ConfigFiles) -> list[dict]:
    try:
        entries = view.list(PLUGINS_PREFIX, 2)
    except ApiError:
        return []
    names = sorted({e["path"].split("/")[1] for e in entries if e["dir"] and e["path"].count("/") == 1})
    out = []
    for name in names:
        if not registry.valid_name(name):
            continue
        folder = f"{PLUGINS_PREFIX}/{name}"
        rels = [p[len(folder) + 1:] for p in view.files(folder)]
        manifest = view.read_text(f"{folder}/{registry.MANIFEST}") if registry.MANIFEST in rels else None
        out.append(registry.parse_manifest(name, manifest, registry.skill_dirs(rels)))
    return out


def plugins_installed(*, workspace_id) -> list[dict]:
    """``GET /workspaces/:id/plugins``: what ``/configs/plugins/`` holds, with ``supported_on_runtime``."""
    workspace = _workspace(workspace_id)
    runtime = workspace.runtime or ""
    return [{**entry, "supported_on_runtime": registry.supported_on(entry, runtime)} for entry in _installed(workspace)]


def plugins_available(*, workspace_id) -> list[dict]:
    """``GET /workspaces/:id/plugins/available``: registry plugins this workspace could install —
    supported on its runtime and allowed for its org — each marked ``installed`` or not."""
    workspace = _workspace(workspace_id)
    runtime = workspace.runtime or ""
    allowed = allowlist_names(org_root_id(workspace))
    installed = {entry["name"] for entry in _installed(workspace)}
    return [
        {**entry, "supported_on_runtime": True, "installed": entry["name"] in installed}
        for entry in registry.registry_list()
        if registry.supported_on(entry, runtime) and (not allowed or entry["name"] in allowed)
    ]


def plugins_compatibility(*, workspace_id, runtime) -> dict:
    """``GET /workspaces/:id/plugins/compatibility?runtime=``: would the installed plugins work on
    ``runtime`` (asked before changing a workspace's runtime)."""
    if not runtime or not isinstance(runtime, str):
        raise ApiError("runtime query parameter is required")
    workspace = _workspace(workspace_id)
    entries = [registry.with_support(entry, runtime) for entry in _installed(workspace)]
    return {
        "runtime": runtime,
        "compatible": all(e["supported_on_runtime"] for e in entries),
        "plugins": [{k: e[k] for k in ("name", "version", "runtimes", "supported_on_runtime")} for e in entries],
        "incompatible": [e["name"] for e in entries if not e["supported_on_runtime"]],
    }


# --- sources ------------------------------------------------------------------------------------------

def parse_source(source) -> tuple[str, str]:
    """``(scheme, spec)`` of ``<scheme>://<spec>``; 400 for anything else."""
    if not isinstance(source, str) or "://" not in source:
        raise ApiError("source must be <scheme>://<spec> with scheme one of: " + ", ".join(SCHEMES))
    scheme, spec = source.split("://", 1)
    if scheme not in SCHEMES:
        raise ApiError(f"unknown plugin source scheme {scheme!r}; known: " + ", ".join(SCHEMES))
    return scheme, spec


def _local_name(spec: str) -> str:
    if not registry.valid_name(spec):
        raise ApiError("invalid plugin name: lowercase letters, digits, '-' and '_' only")
    return spec


def _github_spec(spec: str) -> tuple[str, str, str | None]:
    match = GITHUB_SPEC_RE.match(spec)
    if match is None or ".." in spec:
        raise ApiError("invalid github source: want github://owner/repo#ref")
    ref = match["ref"]
    if ref is None and not settings.PLUGIN_ALLOW_UNPINNED:
        raise ApiError("github source must be pinned to a ref: github://owner/repo#ref")
    return match["owner"], match["repo"], ref


def github_plugin_name(repo: str) -> str:
    name = repo.lower().removesuffix(".git").replace(".", "-")
    name = re.sub(r"^molecule-(ai-)?plugin-", "", name)
    if not registry.valid_name(name):
        raise ApiError("invalid github source: the repository name is not a valid plugin name")
    return name


def _fetch_github(owner: str, repo: str, ref: str | None) -> dict[str, bytes]:
    """The files of a GitHub tarball, below its top folder; 502 when it cannot be fetched."""
    label = f"github://{owner}/{repo}" + (f"#{ref}" if ref else "")
    url = f"{settings.PLUGIN_GITHUB_URL.rstrip('/')}/{owner}/{repo}/tar.gz/{ref or 'HEAD'}"
    try:
        with httpx.stream("GET", url, timeout=settings.PLUGIN_INSTALL_TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                raise ApiError(f"failed to fetch {label}: HTTP {response.status_code}", status=502)
            buffer = io.BytesIO()
            for chunk in response.iter_bytes():
                buffer.write(chunk)
                if buffer.tell() > MAX_TARBALL_BYTES:
                    raise ApiError(f"failed to fetch {label}: archive larger than {MAX_TARBALL_BYTES} bytes", status=502)
    except httpx.HTTPError as exc:
        raise ApiError(f"failed to fetch {label}: {type(exc).__name__}", status=502) from None
    buffer.seek(0)
    return tar_files(buffer, label)


def tar_files(fileobj, label: str) -> dict[str, bytes]:
    """Regular files of a .tar.gz below its single top folder (links, devices and unsafe paths skipped)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r:gz") as archive:
            for member in archive:
                if not member.isfile() or "/" not in member.name:
                    continue
                rel = member.name.split("/", 1)[1]
                if not rel_path_is_valid(rel):
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise ApiError(f"plugin file too large: {rel}", status=413, max_bytes=MAX_FILE_BYTES)
                if len(out) >= registry.MAX_FILES:
                    raise ApiError(f"plugin has too many files, max {registry.MAX_FILES}")
                out[rel] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError):
        raise ApiError(f"failed to fetch {label}: not a gzipped tar archive", status=502) from None
    return out


def sources() -> dict:
    return {"schemes": list(SCHEMES)}


# --- install / uninstall ------------------------------------------------------------------------------

def _check_allowed(workspace: Workspace, name: str) -> None:
    allowed = allowlist_names(org_root_id(workspace))
    if allowed and name not in allowed:
        raise ApiError(f"plugin {name!r} is not in the org plugin allowlist", status=403)


def _write_plugin(workspace: Workspace, name: str, plugin_files: dict[str, bytes]) -> None:
    folder = f"{PLUGINS_PREFIX}/{name}"
    try:
        store = files.own_configs(workspace)
        store.delete(folder)
        for rel, data in sorted(plugin_files.items()):
            store.write(f"{folder}/{rel}", data)
    except StoreUnavailable:
        raise files.store_unavailable() from None
    except OSError as exc:
        raise ApiError(f"failed to install plugin: {exc.strerror or 'write failed'}", status=500) from None


def plugin_install(*, workspace_id, source, actor: str | None = None) -> dict:
    """Install a plugin from ``source`` into the workspace's ``/configs/plugins/<name>/`` and restart it."""
    workspace = _workspace(workspace_id)
    scheme, spec = parse_source(source)
    if scheme == "local":
        name = _local_name(spec)
        _check_allowed(workspace, name)
        plugin_files = registry.registry_files(name)
    else:
        owner, repo, ref = _github_spec(spec)
        name = github_plugin_name(repo)
        _check_allowed(workspace, name)
        plugin_files = _fetch_github(owner, repo, ref)
    for rel in plugin_files:
        if not rel_path_is_valid(rel):
            raise ApiError("invalid path")
    entry = registry.parse_manifest(
        name, plugin_files.get(registry.MANIFEST, b"").decode("utf-8", errors="replace") or None,
        registry.skill_dirs(list(plugin_files)))
    _write_plugin(workspace, name, plugin_files)
    with transaction.atomic():
        emit("PLUGIN_INSTALLED", workspace.id, {"plugin": name, "version": entry["version"], "source": source,
                                                "actor": actor})
        transaction.on_commit(lambda: request_restarts([workspace.id], reason=f"the plugin {name} was installed"),
                              robust=True)
    return {"status": "installed", "plugin": name, "version": entry["version"], "source": source,
            "files": len(plugin_files), "restarting": True,
            "supported_on_runtime": registry.supported_on(entry, workspace.runtime or "")}


def plugin_uninstall(*, workspace_id, name, actor: str | None = None) -> dict:
    """``DELETE /workspaces/:id/plugins/:name``: remove ``/configs/plugins/<name>/`` and restart."""
    if not registry.valid_name(name):
        raise ApiError("invalid plugin name: lowercase letters, digits, '-' and '_' only")
    workspace = _workspace(workspace_id)
    if name not in {entry["name"] for entry in _installed(workspace)}:
        raise ApiError(f"plugin {name!r} is not installed", status=404)
    try:
        files.own_configs(workspace).delete(f"{PLUGINS_PREFIX}/{name}")
    except StoreUnavailable:
        raise files.store_unavailable() from None
    except OSError as exc:
        raise ApiError(f"failed to remove plugin: {exc.strerror or 'delete failed'}", status=500) from None
    with transaction.atomic():
        emit("PLUGIN_UNINSTALLED", workspace.id, {"plugin": name, "actor": actor})
        transaction.on_commit(lambda: request_restarts([workspace.id], reason=f"the plugin {name} was removed"),
                              robust=True)
    return {"status": "uninstalled", "plugin": name, "restarting": True}


def plugin_archive(*, workspace_id, name) -> tuple[str, bytes]:
    """``GET /workspaces/:id/plugins/:name/download``: the installed copy (else the registry's) as
    a .tar.gz whose top folder is the plugin's name; ``(file name, bytes)``."""
    if not registry.valid_name(name):
        raise ApiError("invalid plugin name: lowercase letters, digits, '-' and '_' only")
    workspace = _workspace(workspace_id)
    folder = f"{PLUGINS_PREFIX}/{name}"
    with files.store_reachable():
        view = files.ConfigFiles(workspace)
        rels = view.files(folder)
        contents = {}
        for path in rels:
            try:
                contents[path[len(folder) + 1:]] = view.read(path)
            except StoreUnavailable:
                raise
            except (OSError, ApiError):
                continue
    if not rels:
        try:
            contents = registry.registry_files(name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            raise ApiError(f"plugin {name!r} not found", status=404) from None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for rel, data in sorted(contents.items()):
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return f"{name}.tar.gz", buffer.getvalue()


# --- the org allowlist --------------------------------------------------------------------------------

def allowlist_names(org_id) -> set[str]:
    return set(OrgPluginAllowlist.objects.filter(org_id=org_id).values_list("plugin_name", flat=True))


def _org(org_id) -> Workspace:
    org = _workspace(org_id)
    if org.parent_id is not None:
        raise ApiError("the plugin allowlist is kept on the org root (a workspace without parent)")
    return org


def allowlist_get(*, org_id) -> dict:
    org = _org(org_id)
    rows = OrgPluginAllowlist.objects.filter(org=org)
    return {"org_id": str(org.id), "restricted": rows.exists(),
            "plugins": [{"name": r.plugin_name, "enabled_by": r.enabled_by, "created_at": r.created_at} for r in rows]}


@transaction.atomic
def allowlist_set(*, org_id, plugins, actor: str | None = None) -> dict:
    """``PUT /orgs/:id/plugins/allowlist {"plugins": [names]}``: replace the org's list (``[]``: no limit)."""
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ApiError("plugins must be a list of plugin names")
    bad = [p for p in plugins if not registry.valid_name(p)]
    if bad:
        raise ApiError(f"invalid plugin name: {bad[0]!r}")
    org = _org(org_id)
    wanted = set(plugins)
    OrgPluginAllowlist.objects.filter(org=org).exclude(plugin_name__in=wanted).delete()
    have = allowlist_names(org.id)
    OrgPluginAllowlist.objects.bulk_create(
        [OrgPluginAllowlist(org=org, plugin_name=name, enabled_by=actor) for name in sorted(wanted - have)])
    emit("PLUGIN_ALLOWLIST_UPDATED", org.id, {"plugins": sorted(wanted), "actor": actor})
    return allowlist_get(org_id=org.id)


@transaction.atomic
def allowlist_entry_save(*, entry: OrgPluginAllowlist, actor: str | None = None) -> None:
    """One entry saved from the operator admin (its form checked the name and the root)."""
    if entry.enabled_by is None:
        entry.enabled_by = actor
    entry.save()
    emit("PLUGIN_ALLOWLIST_UPDATED", entry.org_id, {"plugins": sorted(allowlist_names(entry.org_id)), "actor": actor})


@transaction.atomic
def allowlist_entry_delete(*, entry: OrgPluginAllowlist, actor: str | None = None) -> None:
    org_id = entry.org_id
    entry.delete()
    emit("PLUGIN_ALLOWLIST_UPDATED", org_id, {"plugins": sorted(allowlist_names(org_id)), "actor": actor})
