"""Writes to the org tree: create, update, delete, pause, resume, restart, hibernate, wake (spec §5, §6).

Every function is atomic and announces each state change once, after commit, through
``activity.events.emit``. Provisioning goes through the provisioner interface; real
provisioning work runs in Celery tasks started on commit, never inside the request.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from activity.events import emit
from memory.models import AgentMemory, MemoryScope
from memory.redaction import redact_secrets
from molecule_site.errors import ApiError
from registry.models import WorkspaceAuthToken
from registry.redis_keys import cache_url, clear_workspace_keys
from registry.tokens import inbound_secret, token_mint, token_revoke
from schedules.inputs import TemplateSchedulesError, template_schedules
from schedules.services import schedules_disable_for, schedules_from_template
from secrets_app.crypto import encrypt
from secrets_app.models import WorkspaceSecret
from secrets_app.selectors import MODEL_SECRET_KEY
from workspaces import provisioning, selectors, templates
from workspaces.models import EXTERNAL_RUNTIME, LIVE_STATUSES, CanvasLayout, Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner

log = logging.getLogger(__name__)

DEFAULT_RUNTIME = "langgraph"
DEFAULT_API_TIER = 3
MEMORY_CONTENT_LIMIT_BYTES = 100_000


@dataclass
class NewWorkspace:
    """Validated input of ``POST /workspaces``."""

    name: str
    role: str | None = None
    template: str | None = None
    tier: int = 0
    model: str | None = None
    runtime: str | None = None
    external: bool = False
    url: str | None = None
    workspace_dir: str | None = None
    workspace_access: str = "none"
    parent_id: uuid.UUID | None = None
    budget_limit: int | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    max_concurrent_tasks: int = 1
    x: float = 0
    y: float = 0
    initial_memories: list[dict] = field(default_factory=list)


# --- create -------------------------------------------------------------------------------------

@transaction.atomic
def workspace_create(*, new: NewWorkspace, platform_url: str) -> dict:
    """Create a workspace and start provisioning it; returns the spec's 201 body.

    A template supplies what the body leaves out: runtime, model, tier and role (its
    ``config.yaml`` says what the role is; the body wins where it says otherwise).
    """
    runtime, model, tier, role = new.runtime, new.model, new.tier, new.role
    schedules = []
    if new.template:
        config = templates.read_config(templates.configs_dir() / new.template) or {}
        try:  # the template's cron prompts (spec §19), checked before anything is written
            schedules = template_schedules(config.get("schedules"))
        except TemplateSchedulesError as exc:
            raise ApiError(f"template {new.template}: {exc}") from None
        template_runtime, template_model = templates.template_runtime_and_model(config)
        runtime, model = runtime or template_runtime, model or template_model
        tier = tier or templates.template_tier(config)
        role = role or templates.template_role(config)
    external = new.external or runtime == EXTERNAL_RUNTIME
    runtime = EXTERNAL_RUNTIME if external else (runtime or DEFAULT_RUNTIME)
    if new.parent_id and not Workspace.objects.filter(pk=new.parent_id).exclude(status=WorkspaceStatus.REMOVED).exists():
        raise ApiError("parent workspace not found")

    workspace_id = uuid.uuid4()
    workspace = Workspace.objects.create(
        id=workspace_id,
        name=new.name,
        role=role or None,
        tier=tier or DEFAULT_API_TIER,
        runtime=runtime,
        parent_id=new.parent_id,
        workspace_dir=new.workspace_dir or None,
        workspace_access=new.workspace_access or "none",
        budget_limit=new.budget_limit,
        max_concurrent_tasks=max(new.max_concurrent_tasks, 1),
        awareness_namespace=f"workspace:{workspace_id}",
        status=WorkspaceStatus.PROVISIONING,
    )
    secrets = dict(new.secrets)
    if new.model:  # where a workspace's model lives (GET|PUT /workspaces/:id/model); the runtime
        secrets.setdefault(MODEL_SECRET_KEY, new.model)  # reads MODEL_PROVIDER over config.yaml's model
    for key, value in secrets.items():
        ciphertext, version = encrypt(value)
        WorkspaceSecret.objects.create(
            workspace=workspace, key=key, encrypted_value=ciphertext, encryption_version=version
        )
    CanvasLayout.objects.create(workspace=workspace, x=new.x, y=new.y)
    _seed_memories(workspace, new.initial_memories)
    schedules_from_template(workspace_id=workspace.id, entries=schedules)
    emit("WORKSPACE_PROVISIONING", workspace.id, {"name": workspace.name, "tier": workspace.tier, "runtime": runtime})

    if external:
        return _connect_external(workspace, url=new.url, platform_url=platform_url)

    provisioning.start_provisioning(workspace=workspace, template=new.template or "")
    # The original answers "provisioning" even when the row is already failed; clients rely on it.
    return {
        "id": str(workspace.id),
        "status": WorkspaceStatus.PROVISIONING,
        "awareness_namespace": workspace.awareness_namespace,
        "workspace_access": workspace.workspace_access,
    }


def _seed_memories(workspace: Workspace, memories: list[dict]) -> None:
    rows = []
    for memory in memories:
        content = memory.get("content")
        scope = (memory.get("scope") or MemoryScope.LOCAL).upper()
        if not isinstance(content, str) or not content or scope not in MemoryScope.values:
            continue  # the original skips bad entries instead of failing the create
        content = content.encode()[:MEMORY_CONTENT_LIMIT_BYTES].decode(errors="ignore")
        rows.append(
            AgentMemory(
                workspace=workspace, content=redact_secrets(content), scope=scope,
                namespace=workspace.awareness_namespace[:50],
            )
        )
    AgentMemory.objects.bulk_create(rows)


def _connect_external(workspace: Workspace, *, url: str | None, platform_url: str) -> dict:
    """An external workspace gets its token and connection block whether or not it came with a
    URL. Beyond the original, which mints none when given a URL: such a workspace had no live
    token, so anyone could register for it and take it over; outside dev mode its agent could
    not register or heartbeat at all."""
    if url:
        workspace.url = url
        workspace.status = WorkspaceStatus.ONLINE
        workspace.save(update_fields=["url", "status", "updated_at"])
        transaction.on_commit(lambda: cache_url(workspace.id, url))
        emit("WORKSPACE_ONLINE", workspace.id, {"name": workspace.name, "external": True})
    else:
        workspace.status = WorkspaceStatus.AWAITING_AGENT
        workspace.save(update_fields=["status", "updated_at"])
        emit("WORKSPACE_AWAITING_AGENT", workspace.id, {"name": workspace.name, "external": True})
    _, token = token_mint(workspace=workspace)
    return {
        "id": str(workspace.id),
        "external": True,
        "status": workspace.status,
        "connection": connection_instructions(workspace, token=token, platform_url=platform_url),
    }


def connection_instructions(workspace: Workspace, *, token: str, platform_url: str) -> dict:
    """What an external agent needs to join: endpoints, its token and ready-to-run snippets."""
    base = platform_url.rstrip("/")
    register, heartbeat = f"{base}/registry/register", f"{base}/registry/heartbeat"
    body = json.dumps(
        {"id": str(workspace.id), "url": "https://YOUR-AGENT-HOST/a2a", "agent_card": {"name": workspace.name}},
        separators=(",", ":"),
    )
    curl = (
        f"curl -X POST {register} -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {token}' -d '{body}'"
    )
    python = (
        "import time, requests\n"
        f"PLATFORM = {base!r}\n"
        f"WORKSPACE_ID = {str(workspace.id)!r}\n"
        f"HEADERS = {{'Authorization': 'Bearer {token}'}}\n"
        "requests.post(f'{PLATFORM}/registry/register', headers=HEADERS, json={\n"
        "    'id': WORKSPACE_ID, 'url': 'https://YOUR-AGENT-HOST/a2a',\n"
        f"    'agent_card': {{'name': {workspace.name!r}}},\n"
        "}).raise_for_status()\n"
        "while True:  # heartbeat every 30 s keeps the workspace online\n"
        "    requests.post(f'{PLATFORM}/registry/heartbeat', headers=HEADERS,\n"
        "                  json={'workspace_id': WORKSPACE_ID, 'error_rate': 0, 'active_tasks': 0})\n"
        "    time.sleep(30)\n"
    )
    return {
        "workspace_id": str(workspace.id),
        "platform_url": base,
        "auth_token": token,
        # what the platform's proxy presents on every call it forwards: an agent started with it
        # (MOLECULE_INBOUND_SECRET for our runtime) refuses anything else (beyond the original)
        "inbound_secret": inbound_secret(workspace.id),
        "registry_endpoint": register,
        "heartbeat_endpoint": heartbeat,
        "curl_register_template": curl,
        "python_snippet": python,
    }


# --- update -------------------------------------------------------------------------------------

@transaction.atomic
def workspace_update(*, workspace: Workspace, changes: dict) -> dict:
    """Apply the PATCH keys that are present; returns the spec's 200 body.

    Beyond the original, which emits nothing here: a broadcast-only ``WORKSPACE_UPDATED`` with the
    keys that changed, so every open canvas shows a rename, a move or a re-parent made elsewhere
    (another browser, the admin, a script) without a reload. Broadcast-only: drags PATCH often
    and are not history worth a ``structure_events`` row.
    """
    fields = [name for name in ("name", "role", "tier", "runtime") if name in changes]
    for name in fields:
        setattr(workspace, name, changes[name])
    if "parent_id" in changes:
        parent_id = changes["parent_id"]
        if parent_id is not None:
            if not Workspace.objects.filter(pk=parent_id).exclude(status=WorkspaceStatus.REMOVED).exists():
                raise ApiError("parent workspace not found")
            if selectors.would_create_cycle(workspace.id, parent_id):
                raise ApiError("parent_id would create a cycle in the workspace hierarchy")
        workspace.parent_id = parent_id
        fields.append("parent")
    body = {"status": "updated"}
    if "hibernation_idle_minutes" in changes:
        minutes = changes["hibernation_idle_minutes"] or None
        workspace.hibernation_idle_minutes = minutes
        # the idle clock starts now for a live workspace; a stopped one starts it at its register
        live = minutes and workspace.status in LIVE_STATUSES
        workspace.hibernation_deadline = timezone.now() + timedelta(minutes=minutes) if live else None
        fields += ["hibernation_idle_minutes", "hibernation_deadline"]
    if "workspace_dir" in changes:
        workspace.workspace_dir = changes["workspace_dir"]
        fields.append("workspace_dir")
        body["needs_restart"] = True
    if fields:
        workspace.save(update_fields=[*fields, "updated_at"])

    layout_changes = {}
    if "collapsed" in changes:
        layout_changes["collapsed"] = changes["collapsed"]
    if "x" in changes and "y" in changes:
        layout_changes.update(x=changes["x"], y=changes["y"])
    if layout_changes:
        CanvasLayout.objects.update_or_create(workspace=workspace, defaults=layout_changes)
    shown = {key: changes[key] for key in ("name", "role", "tier", "runtime") if key in fields} | layout_changes
    if "parent" in fields:
        shown["parent_id"] = str(workspace.parent_id) if workspace.parent_id else None
    if shown:  # what a canvas draws (workspace_dir is not)
        emit("WORKSPACE_UPDATED", workspace.id, shown, persist=False)
    return body


# --- delete -------------------------------------------------------------------------------------

def workspace_delete(*, workspace_id: uuid.UUID, confirm: bool, purge: bool) -> dict:
    """Remove a workspace and, with ``confirm``, its whole subtree (spec §5.5)."""
    children = selectors.children_of(workspace_id)
    if children and not confirm:
        raise ApiError("confirmation_required", status=409, body={
            "status": "confirmation_required",
            "message": "This workspace has sub-workspaces. Delete with ?confirm=true to cascade delete.",
            "children": [{"id": str(c.id), "name": c.name} for c in children],
            "children_count": len(children),
        })
    with transaction.atomic():
        descendants = selectors.descendant_ids(workspace_id)
        doomed = [*descendants, workspace_id]
        rows = list(Workspace.objects.select_for_update().filter(pk__in=doomed))
        Workspace.objects.filter(pk__in=doomed).update(
            status=WorkspaceStatus.REMOVED, url="", updated_at=timezone.now()
        )
        CanvasLayout.objects.filter(workspace_id__in=doomed).delete()
        token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace_id__in=doomed))
        schedules_disable_for(doomed)
        for descendant in descendants:
            emit("WORKSPACE_REMOVED", descendant, {})
        emit("WORKSPACE_REMOVED", workspace_id, {"cascade_deleted": len(descendants)})
        if purge:
            _purge(doomed)
    provisioning.remove_runtimes(rows)
    status = "purged" if purge else "removed"
    return {"status": status, "cascade_deleted": len(descendants)}


def _purge(workspace_ids: list[uuid.UUID]) -> None:
    """Hard-delete the rows; the tables hanging off them go with them (Django cascades).

    References are cut first: rows outside the set may point in, and inside the set a parent
    reference would protect a row from deletion.
    """
    Workspace.objects.filter(parent_id__in=workspace_ids).update(parent=None)
    Workspace.objects.filter(forwarded_to__in=workspace_ids).update(forwarded_to=None)
    Workspace.objects.filter(pk__in=workspace_ids).delete()


# --- pause / resume / restart ---------------------------------------------------------------------

@transaction.atomic
def workspace_pause(*, workspace_id: uuid.UUID) -> dict:
    """Pause a workspace and every non-removed, non-paused descendant (spec §6.3)."""
    workspace = (
        Workspace.objects.select_for_update()
        .filter(pk=workspace_id)
        .exclude(status__in=[WorkspaceStatus.REMOVED, WorkspaceStatus.PAUSED])
        .first()
    )
    if workspace is None:
        raise ApiError("workspace not found or already paused", status=404)
    targets = [workspace, *Workspace.objects.filter(pk__in=selectors.descendant_ids(workspace_id)).exclude(
        status=WorkspaceStatus.PAUSED
    )]
    ids = [w.id for w in targets]
    Workspace.objects.filter(pk__in=ids).update(status=WorkspaceStatus.PAUSED, url="", updated_at=timezone.now())
    for target in targets:
        emit("WORKSPACE_PAUSED", target.id, {"name": target.name})
    transaction.on_commit(lambda: provisioning.stop_runtimes(targets))
    return {"status": "paused", "paused_count": len(targets)}


def _refuse_under_paused_parent(workspace: Workspace) -> None:
    paused = selectors.paused_ancestor(workspace)
    if paused is not None:
        raise ApiError(f'parent workspace "{paused.name}" is paused — resume it first', status=409)


def _require_provisioner():
    provisioner = get_provisioner()
    if not provisioner.available:
        raise ApiError("provisioner not available", status=503)
    return provisioner


@transaction.atomic
def workspace_resume(*, workspace_id: uuid.UUID) -> dict:
    """Resume a paused workspace and its paused descendants (spec §6.4)."""
    workspace = Workspace.objects.select_for_update().filter(pk=workspace_id, status=WorkspaceStatus.PAUSED).first()
    if workspace is None:
        raise ApiError("workspace not found or not paused", status=404)
    _require_provisioner()
    _refuse_under_paused_parent(workspace)
    targets = [workspace, *Workspace.objects.filter(
        pk__in=selectors.descendant_ids(workspace_id), status=WorkspaceStatus.PAUSED
    )]
    provisioning.mark_provisioning(Workspace.objects.filter(pk__in=[t.id for t in targets]))
    provisioning.provision_on_commit([t.id for t in targets])
    return {"status": "provisioning", "resumed_count": len(targets)}


@transaction.atomic
def workspace_restart(*, workspace_id: uuid.UUID, reset: bool = False) -> dict:
    """Restart a workspace's runtime (spec §6.1)."""
    workspace = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    _refuse_under_paused_parent(workspace)
    _require_provisioner()
    provisioning.mark_provisioning(Workspace.objects.filter(pk=workspace.id))
    provisioning.provision_on_commit([workspace.id], restart=True)
    return {"status": "provisioning", "config_dir": "", "reset_session": reset}


# --- hibernation (spec §6.5, §19) -------------------------------------------------------------------

NOT_HIBERNATABLE = "workspace not found or not in a hibernatable state (must be online or degraded)"
HAS_ACTIVE_TASKS = "workspace has active tasks; use ?force=true to terminate them"


def workspace_hibernate(*, workspace_id: uuid.UUID, force: bool = False) -> dict:
    """``POST /workspaces/:id/hibernate[?force=true]``: stop an online or degraded workspace's
    runtime until the next A2A message (or schedule) wakes it.

    Departure from the original, whose claim always requires ``active_tasks = 0`` so that
    ``force=true`` (which its own 409 recommends) silently does nothing: here ``force`` hibernates
    a busy workspace, ending its tasks with the runtime.
    """
    workspace = Workspace.objects.filter(pk=workspace_id, status__in=LIVE_STATUSES).first()
    if workspace is None:
        raise ApiError(NOT_HIBERNATABLE, status=404)
    if workspace.active_tasks > 0 and not force:
        raise ApiError(HAS_ACTIVE_TASKS, status=409, active_tasks=workspace.active_tasks)
    hibernate(workspace_id=workspace.id, force=force)
    return {"status": "hibernated"}


def hibernate(*, workspace_id, force: bool = False, due_before=None) -> bool:
    """The hibernate procedure: claim the row (``hibernating``, only while online/degraded and —
    unless ``force`` — idle; with ``due_before`` only while its hibernation deadline is before
    that), stop the runtime, then ``hibernated`` with no URL and no Redis keys and one
    ``WORKSPACE_HIBERNATED {name,tier}`` after commit. Returns whether this call hibernated it
    (False: somebody else claimed it, or it changed meanwhile)."""
    claim = Workspace.objects.filter(pk=workspace_id, status__in=LIVE_STATUSES)
    if not force:
        claim = claim.filter(active_tasks=0)
    if due_before is not None:
        claim = claim.filter(hibernation_deadline__lte=due_before)
    if not claim.update(status=WorkspaceStatus.HIBERNATING, updated_at=timezone.now()):
        return False
    workspace = Workspace.objects.get(pk=workspace_id)
    try:
        get_provisioner().stop(workspace)
    except Exception:  # noqa: BLE001 - a runtime that will not stop still must not stay "hibernating"
        log.exception("could not stop the runtime of workspace %s while hibernating it", workspace_id)
    with transaction.atomic():
        done = Workspace.objects.filter(pk=workspace_id, status=WorkspaceStatus.HIBERNATING).update(
            status=WorkspaceStatus.HIBERNATED, url="", active_tasks=0, current_task="", hibernation_deadline=None,
            updated_at=timezone.now(),
        )
        if done:
            emit("WORKSPACE_HIBERNATED", workspace.id, {"name": workspace.name, "tier": workspace.tier})
            transaction.on_commit(lambda: clear_workspace_keys([workspace.id]))
    return bool(done)


def workspace_wake(*, workspace_id) -> bool:
    """Start a hibernated workspace's runtime again (an A2A message to it, a schedule firing):
    ``provisioning`` (``WORKSPACE_PROVISIONING``) and the provision task, whose runtime then gets
    the restart-context briefing. Returns whether a wake was queued: False when the workspace is
    not hibernated (already waking: a second caller changes nothing), is external, or was not
    provisioned by this backend (nothing of ours to start)."""
    provisioner = get_provisioner()
    if not provisioner.available or str(workspace_id) not in provisioner.provisioned_workspace_ids():
        return False
    with transaction.atomic():
        moved = provisioning.mark_provisioning(
            Workspace.objects.filter(pk=workspace_id, status=WorkspaceStatus.HIBERNATED).exclude(runtime=EXTERNAL_RUNTIME)
        )
        provisioning.provision_on_commit([w.id for w in moved], reason=provisioning.REASON_WAKE)
    return bool(moved)
