"""Bundles: a workspace and its sub-tree as one JSON document, and back (spec §14).

**Export** (:func:`bundle_export`) walks the non-removed children recursively. Each workspace's
content comes from its own ``/configs`` (file store), else from the template it resolves to
(``templates.template_dir_for``; the original's "first template found" last resort is not kept):
``system-prompt.md`` → ``system_prompt``, ``config.yaml`` → ``prompts["config.yaml"]``, every
``skills/<id>/`` directory → a skill with all its text files. Beyond the original, the files that
config.yaml lists under ``prompt_files`` and ``shared_context`` are added to ``prompts`` too (the
map is keyed by path, so clients of the original read it unchanged) — without them an imported
team lead would lose its shared brief.

**No secrets, ever.** Secrets live encrypted in the database and are never read into a bundle.
Files whose path has a hidden component (``.auth_token``, ``.env``, ``.claude/…``) are never
exported nor imported. As a last guard, any plaintext of a secret that applies to an exported
workspace (its own or a global one, at least 8 characters long) that turns up in the bundle —
say an API key pasted into a prompt — is replaced by ``[REDACTED]``. Binary (non-UTF-8) skill
files are skipped rather than corrupted.

**Import** (:func:`bundle_import`) validates the whole tree first (400 ``invalid bundle``), then
in one transaction creates each workspace (new id, name, role = description, tier, runtime from
the top-level ``runtime:`` line of ``prompts["config.yaml"]`` — default ``langgraph`` —, parent,
``source_bundle_id`` = the bundle's id), announces ``WORKSPACE_PROVISIONING {name, tier,
source_bundle_id}`` and writes its files into its own store: ``system-prompt.md``, the prompts,
``skills/<id>/<rel>``, plus a generated config.yaml when the bundle has none. Provisioning follows
``workspace_create``: a backend that can run workspaces starts them after commit; without one
(the ``none`` backend) the row is marked ``failed`` with the same message and
``WORKSPACE_PROVISION_FAILED`` event as a create (the original leaves it ``provisioning``
forever); the answer says ``"status":"provisioning"`` either way, as the spec's and a create's
do. ``agent_card`` is not imported: the new runtime registers its own.

**Schedules** (beyond the spec's shape, one added key): export lists each workspace's cron
prompts as ``schedules: [{name, cron_expr, timezone, prompt, enabled, source}]`` (creation order;
run state — counters, ``stale``, the next fire — stays behind). Import recreates them on the new
workspace with the same ``source`` (``operator`` when a bundle leaves it out) and a next fire
computed afresh; a bundle without the key imports none. Entries are checked like a template's
``schedules:`` list before anything is written: a bad one is the same 400 ``invalid bundle`` with
a ``detail`` naming it (``sub_workspaces[0].schedules[1]: invalid cron_expr: …``).
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, field

import yaml
from django.db import transaction

from activity.events import emit
from molecule_site.errors import ApiError
from schedules.inputs import ScheduleInput, TemplateSchedulesError, template_schedules
from schedules.models import ScheduleSource
from schedules.selectors import workspace_schedules
from schedules.services import MAX_SCHEDULES_PER_WORKSPACE, schedule_create
from secrets_app.crypto import DecryptionError, decrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces import selectors, validators
from workspaces.files import ConfigFiles, FileStore, FileTooLarge, store_for
from workspaces.models import CanvasLayout, Workspace, WorkspaceStatus
from workspaces.provisioning import start_provisioning
from workspaces.selectors import as_uuid
from workspaces.services import DEFAULT_API_TIER, DEFAULT_RUNTIME
from workspaces.templates import CONFIG_FILE, MAX_FILE_BYTES, default_config_yaml, rel_path_is_valid

SCHEMA = "1.0"
SYSTEM_PROMPT_FILE = "system-prompt.md"
SKILLS_DIR = "skills"
SKILL_FILE = "SKILL.md"
REDACTED = "[REDACTED]"
MIN_REDACTED_LENGTH = 8
MAX_BUNDLE_WORKSPACES = 200
MAX_BUNDLE_DEPTH = 16
MAX_FILES_PER_WORKSPACE = 1000
INVALID_BUNDLE = "invalid bundle"


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


# --- export ------------------------------------------------------------------------------------------

def bundle_export(*, workspace_id) -> dict:
    """``GET /bundles/export/:id``: the workspace and its non-removed descendants."""
    parsed = as_uuid(workspace_id)
    workspace = (
        Workspace.objects.exclude(status=WorkspaceStatus.REMOVED).filter(pk=parsed).first() if parsed else None
    )
    if workspace is None:
        raise ApiError("bundle not found", status=404)
    exported: list[uuid.UUID] = []
    bundle = _export(workspace, exported)
    return _redacted(bundle, _secret_values(exported))


def _export(workspace: Workspace, exported: list[uuid.UUID]) -> dict:
    exported.append(workspace.id)
    view = ConfigFiles(workspace)
    prompts = {}
    config_text = view.read_text(CONFIG_FILE)
    if config_text is not None:
        prompts[CONFIG_FILE] = config_text
    for path in _referenced_files(view.config()):
        text = view.read_text(path)
        if text is not None:
            prompts[path] = text
    children = [c for c in selectors.children_of(workspace.id) if c.id not in exported]
    return {
        "schema": SCHEMA,
        "id": str(workspace.id),
        "name": workspace.name,
        "description": workspace.role or "",
        "tier": workspace.tier,
        "model": "",
        "system_prompt": view.read_text(SYSTEM_PROMPT_FILE) or "",
        "skills": _skills(view),
        "tools": [],
        "prompts": prompts,
        "schedules": [_schedule(row) for row in workspace_schedules(workspace.id)],
        "sub_workspaces": [_export(child, exported) for child in children],
        "agent_card": workspace.agent_card,
        "author": "",
        "version": "1.0.0",
    }


def _schedule(row) -> dict:
    return {"name": row.name, "cron_expr": row.cron_expr, "timezone": row.timezone, "prompt": row.prompt,
            "enabled": row.enabled, "source": row.source}


def _referenced_files(config: dict) -> list[str]:
    """Top-level files config.yaml points at (``prompt_files``, ``shared_context``), deduplicated."""
    paths = []
    for key in ("prompt_files", "shared_context"):
        value = config.get(key)
        for path in value if isinstance(value, list) else []:
            if not rel_path_is_valid(path) or _hidden(path):
                continue
            path = posixpath.normpath(path)
            if path not in (CONFIG_FILE, SYSTEM_PROMPT_FILE) and not path.startswith(SKILLS_DIR + "/"):
                paths.append(path)
    return list(dict.fromkeys(paths))


def _skills(view: ConfigFiles) -> list[dict]:
    try:
        entries = view.list(SKILLS_DIR, 1)
    except ApiError:
        return []  # a skills/ symlink leading out of the directory
    skills = []
    for entry in entries:
        if not entry["dir"] or _hidden(entry["path"]):
            continue
        skill_id = posixpath.basename(entry["path"])
        files = {}
        for path in view.files(entry["path"]):
            rel = path[len(entry["path"]) + 1:]
            if _hidden(rel):
                continue
            try:
                files[rel] = view.read(path).decode("utf-8")
            except (OSError, FileTooLarge, UnicodeDecodeError, ApiError):
                continue
        meta = _front_matter(files.get(SKILL_FILE, ""))
        skills.append({
            "id": skill_id,
            "name": str(meta.get("name") or skill_id),
            "description": str(meta.get("description") or ""),
            "files": files,
        })
    return skills


def _front_matter(text: str) -> dict:
    """The YAML between leading ``---`` lines of a SKILL.md (runtime spec §6.1), or ``{}``."""
    if not text.startswith("---"):
        return {}
    parts = text.split("---", 2)
    if len(parts) < 3:
        return {}
    try:
        loaded = yaml.safe_load(parts[1])
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _secret_values(workspace_ids: list[uuid.UUID]) -> list[str]:
    """Plaintexts that must not leave in the bundle, longest first (so overlaps redact whole)."""
    rows = [*WorkspaceSecret.objects.filter(workspace_id__in=workspace_ids), *GlobalSecret.objects.all()]
    values = set()
    for row in rows:
        try:
            value = decrypt(row.encrypted_value, row.encryption_version)
        except (DecryptionError, UnicodeDecodeError, ValueError):
            continue  # unreadable with this key: it cannot be in our files either way we can check
        if len(value) >= MIN_REDACTED_LENGTH:
            values.add(value)
    return sorted(values, key=len, reverse=True)


def _redacted(value, secrets: list[str]):
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redacted(k, secrets): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    return value


# --- import ------------------------------------------------------------------------------------------

@dataclass
class _Node:
    """One validated workspace of a bundle, ready to create."""

    bundle_id: str | None
    name: str
    description: str
    tier: int
    runtime: str
    files: dict[str, bytes]
    schedules: list[tuple[ScheduleInput, str]] = field(default_factory=list)  # (fields, source)
    children: list[_Node] = field(default_factory=list)


def bundle_import(*, bundle) -> dict:
    """``POST /bundles/import``: create the bundle's tree as new workspaces; the spec's 201 body."""
    root = _parse(bundle, depth=0, count=[0], where="")
    stores: list[FileStore] = []
    try:
        with transaction.atomic():
            return _create(root, parent_id=None, stores=stores)
    except BaseException:
        for store in stores:
            store.discard()
        raise


def _create(node: _Node, *, parent_id, stores: list[FileStore]) -> dict:
    workspace_id = uuid.uuid4()
    workspace = Workspace.objects.create(
        id=workspace_id,
        name=node.name,
        role=node.description or None,
        tier=node.tier,
        runtime=node.runtime,
        parent_id=parent_id,
        source_bundle_id=node.bundle_id,
        awareness_namespace=f"workspace:{workspace_id}",
        status=WorkspaceStatus.PROVISIONING,
    )
    CanvasLayout.objects.create(workspace=workspace)
    for fields, source in node.schedules:
        schedule_create(workspace_id=workspace.id, fields=fields, source=source)
    emit("WORKSPACE_PROVISIONING", workspace.id,
         {"name": workspace.name, "tier": workspace.tier, "source_bundle_id": node.bundle_id or ""})
    store = store_for(workspace)
    stores.append(store)
    try:
        for path, data in node.files.items():
            store.write(path, data)
    except OSError:
        raise ApiError("failed to write bundle files", status=500) from None

    # Answered "provisioning" whatever the backend does next, as the spec and a create do; a row
    # no backend can run is marked failed (with its event) for the canvas to show.
    body = {"workspace_id": str(workspace.id), "name": workspace.name, "status": WorkspaceStatus.PROVISIONING}
    start_provisioning(workspace=workspace)
    children = [_create(child, parent_id=workspace.id, stores=stores) for child in node.children]
    if children:
        body["children"] = children
    return body


def _invalid(detail: str | None = None) -> ApiError:
    return ApiError(INVALID_BUNDLE, detail=detail) if detail else ApiError(INVALID_BUNDLE)


def _optional(data: dict, key: str, kind, default):
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _invalid()
    return value


def _text_map(value) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid()
    return value


def _parse(data, *, depth: int, count: list[int], where: str) -> _Node:
    """Validate one bundle node and its children; any problem is ``invalid bundle``."""
    count[0] += 1
    if not isinstance(data, dict) or depth > MAX_BUNDLE_DEPTH or count[0] > MAX_BUNDLE_WORKSPACES:
        raise _invalid()
    name = data.get("name")
    if not isinstance(name, str) or not name or validators.field_problem("name", name):
        raise _invalid()
    description = _optional(data, "description", str, "")
    if description and validators.field_problem("role", description):
        raise _invalid()
    tier = _optional(data, "tier", int, 0) or DEFAULT_API_TIER
    if not 1 <= tier <= 4:
        raise _invalid()
    bundle_id = _optional(data, "id", str, None)
    system_prompt = _optional(data, "system_prompt", str, "")
    prompts = _text_map(_optional(data, "prompts", dict, {}))
    skills = _optional(data, "skills", list, [])
    sub_workspaces = _optional(data, "sub_workspaces", list, [])
    schedules = _schedules(data.get("schedules"), f"{where}schedules")

    files: dict[str, str] = {}
    for path, content in prompts.items():
        _add_file(files, path, content)
    if system_prompt:
        files[SYSTEM_PROMPT_FILE] = system_prompt
    for skill in skills:
        if not isinstance(skill, dict):
            raise _invalid()
        skill_id = skill.get("id")
        if not isinstance(skill_id, str) or not rel_path_is_valid(skill_id) or "/" in skill_id:
            raise _invalid()
        if _hidden(skill_id):
            continue
        for rel, content in _text_map(_optional(skill, "files", dict, {})).items():
            if not rel_path_is_valid(rel):
                raise _invalid()
            _add_file(files, f"{SKILLS_DIR}/{skill_id}/{rel}", content)

    runtime = _runtime_line(prompts.get(CONFIG_FILE)) or DEFAULT_RUNTIME
    if CONFIG_FILE not in files:
        files[CONFIG_FILE] = default_config_yaml(name=name, description=description, tier=tier, runtime=runtime)
    encoded = {path: content.encode() for path, content in files.items()}
    if len(encoded) > MAX_FILES_PER_WORKSPACE or any(len(d) > MAX_FILE_BYTES for d in encoded.values()):
        raise _invalid()
    children = [
        _parse(child, depth=depth + 1, count=count, where=f"{where}sub_workspaces[{index}].")
        for index, child in enumerate(sub_workspaces)
    ]
    return _Node(bundle_id, name, description, tier, runtime, encoded, schedules, children)


def _schedules(value, where: str) -> list[tuple[ScheduleInput, str]]:
    """A node's ``schedules`` checked as a template's list is, each with its ``source``."""
    try:
        entries = template_schedules(value, where=where)
    except TemplateSchedulesError as exc:
        raise _invalid(str(exc)) from None
    if len(entries) > MAX_SCHEDULES_PER_WORKSPACE:
        raise _invalid(f"{where}: a workspace has at most {MAX_SCHEDULES_PER_WORKSPACE} schedules")
    sources = []
    for index, entry in enumerate(value or []):
        source = entry.get("source")
        if source is None:
            source = ScheduleSource.OPERATOR
        elif source not in ScheduleSource.values:
            raise _invalid(f"{where}[{index}]: source must be one of {', '.join(ScheduleSource.values)}")
        sources.append(ScheduleSource(source))
    return list(zip(entries, sources))


def _add_file(files: dict[str, str], path: str, content: str) -> None:
    if not rel_path_is_valid(path):
        raise _invalid()
    if not _hidden(path):  # never plant dotfiles such as .auth_token in a workspace
        files[posixpath.normpath(path)] = content


def _runtime_line(config_text: str | None) -> str | None:
    """The value of the top-level ``runtime:`` line of a config.yaml, as the original reads it."""
    for line in (config_text or "").splitlines():
        if line.startswith("runtime:"):
            value = line[len("runtime:"):].split("#", 1)[0].strip().strip("'\"")
            if value and not validators.field_problem("runtime", value):
                return value
            return None
    return None
