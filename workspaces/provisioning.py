"""How a workspace's runtime starts and restarts: the one service (spec §6, §16).

Every start goes through here, whoever asked for it (create, resume, restart, a secret change,
the liveness and health sweeps, the proxy waking a hibernated or dead runtime, the platform's
own start):

1. **the transition** — :func:`mark_provisioning` / :func:`mark_failed` are the only writes of
   the ``provisioning`` and ``failed`` statuses, each with its one event after commit;
2. **the launch** — :func:`launch_for` prepares what the runtime needs: the configuration (its
   template, a generated ``config.yaml``), the token (issue-and-inject: every live token
   revoked, a new one minted), the merged secrets and the platform's variables (§16);
3. **the port** — the launch goes to the provisioner backend
   (:mod:`workspaces.provisioners`: docker | local | none), which only decides where the runtime
   runs. Slow work happens in the Celery tasks below, never in a request.

:func:`request_restarts` is the only way anyone asks for a restart (the original's
``RestartByID``): it queues :func:`restart_workspace` for the workspaces the backend provisioned
itself — never for one that merely registered — and that task applies the skip rules, the
per-workspace try-lock and the backend's back-off.
"""

from __future__ import annotations

import logging
import math
import re

import redis
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone

from activity.events import emit
from molecule_site.redis_client import get_redis
from registry.models import WorkspaceAuthToken
from registry.redis_keys import clear_workspace_keys
from registry.tokens import INBOUND_SECRET_ENV, inbound_secret, token_mint, token_revoke
from secrets_app.selectors import SecretDecryptError, merged_env
from workspaces import selectors, templates
from workspaces.models import EXTERNAL_RUNTIME, Workspace, WorkspaceConfig, WorkspaceStatus
from workspaces.provisioners import Launch, get_provisioner

log = logging.getLogger(__name__)

NOT_RESTARTED_STATUSES = (WorkspaceStatus.REMOVED, WorkspaceStatus.PAUSED, WorkspaceStatus.HIBERNATED)
# The statuses of a workspace whose runtime should be running.
RUNNING_STATUSES = (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED, WorkspaceStatus.OFFLINE,
                    WorkspaceStatus.PROVISIONING)
RESTART_LOCK_SECONDS = 120
PROVISIONING_GRACE_SECONDS = 10

# What the platform sets in a runtime's environment; a secret with one of these names does not
# override it. Backends add where the runtime lives (ports, paths) under the same rule.
PLATFORM_ENV = frozenset({
    "WORKSPACE_ID", "PLATFORM_URL", "MOLECULE_URL", "PARENT_ID", "WORKSPACE_CONFIG_PATH", "CONFIGS_DIR",
    "WORKSPACE_DIR", "PORT", "A2A_PORT", "HOST", "AGENT_URL", "TIER", "DELEGATION_RESULTS_FILE", "PLUGINS_DIR",
    "MOLECULE_AGENT_ROLE", "MOLECULE_STATE_DIR", "AGENT_SNAPSHOT_PATH", "HEARTBEAT_INTERVAL", INBOUND_SECRET_ENV,
})
# The runtime's own default beat (runtime spec §4), used while it fits the liveness deadline.
RUNTIME_HEARTBEAT_SECONDS = 30.0
GIT_EMAIL_DOMAIN = "agents.molecule.local"


# Sent once a runtime was started again for a workspace that ran before (RestartByID, a restart
# request, a wake from hibernation), from the task that started it: keywords ``workspace_id``,
# ``reason``, ``previous_session_at`` (the last heartbeat before the restart, ISO or None),
# ``current_task`` and ``last_error`` (the row's, at restart time). The registry answers it with
# the restart-context briefing (registry/restart_context.py, spec §6.2), which this layer cannot
# import: it goes through the A2A proxy, above us.
runtime_restarted = Signal()

REASON_RESTART_REQUESTED = "a restart was requested"
REASON_PLATFORM_RESTARTED = "the platform restarted, so the runtime was started again"
REASON_OFFLINE = "the runtime stopped answering and was restarted automatically"
REASON_WAKE = "the workspace was woken from hibernation"
REASON_SECRETS_CHANGED = "its secrets changed, so the runtime was restarted to pick them up"
REASON_UNREACHABLE = "the runtime could not be reached and was restarted automatically"


def _announce_restart(workspace: Workspace, reason: str) -> None:
    previous = workspace.last_heartbeat_at
    runtime_restarted.send(
        sender=Workspace, workspace_id=str(workspace.id), reason=reason,
        previous_session_at=previous.isoformat() if previous else None,
        current_task=workspace.current_task or "", last_error=workspace.last_sample_error or "",
    )


def restart_lock_key(workspace_id) -> str:
    return f"ws:{workspace_id}:restart-lock"


# --- the transitions ------------------------------------------------------------------------------------

def _provisioning_payload(workspace: Workspace) -> dict:
    return {"name": workspace.name, "tier": workspace.tier, "runtime": workspace.runtime}


def mark_provisioning(rows: QuerySet) -> list[Workspace]:
    """Put ``rows`` (narrowed by the caller to the statuses that may move) in ``provisioning`` with
    no URL: one ``WORKSPACE_PROVISIONING {name,tier,runtime}`` each, their Redis keys cleared once
    it commits. Returns the rows that moved (PostgreSQL re-checks the filter on the locked rows,
    so a row that changed meanwhile is left alone)."""
    with transaction.atomic():
        moved = list(rows.select_for_update().only("id", "name", "tier", "runtime"))
        ids = [workspace.id for workspace in moved]
        Workspace.objects.filter(pk__in=ids).update(status=WorkspaceStatus.PROVISIONING, url="",
                                                    updated_at=timezone.now())
        for workspace in moved:
            emit("WORKSPACE_PROVISIONING", workspace.id, _provisioning_payload(workspace))
        if ids:
            transaction.on_commit(lambda: clear_workspace_keys(ids))
    return moved


def mark_failed(workspace_id, reason: str, payload: dict, *, only_from_provisioning: bool = True) -> bool:
    """``failed`` with ``reason`` as ``last_sample_error`` and one ``WORKSPACE_PROVISION_FAILED``;
    by default only while the row is still ``provisioning`` (a removed or paused one stays)."""
    with transaction.atomic():
        rows = Workspace.objects.filter(pk=workspace_id)
        if only_from_provisioning:
            rows = rows.filter(status=WorkspaceStatus.PROVISIONING)
        updated = rows.update(status=WorkspaceStatus.FAILED, last_sample_error=reason, updated_at=timezone.now())
        if updated:
            emit("WORKSPACE_PROVISION_FAILED", workspace_id, payload)
    return bool(updated)


START_FAILED = "workspace start failed"


def _failed_start(workspace_id, exc: Exception) -> None:
    """Spec §16: a start failure is ``failed`` with the generic ``workspace start failed``; the
    reason the backend gave follows it (``last_sample_error``, the event's ``detail``) so the
    operator sees what to fix. A secret that cannot be decrypted keeps the original's own error."""
    log.error("starting the runtime of workspace %s failed: %s", workspace_id, exc, exc_info=exc)
    if isinstance(exc, SecretDecryptError):
        mark_failed(workspace_id, str(exc), {"error": str(exc)})
        return
    mark_failed(workspace_id, f"{START_FAILED}: {exc}", {"error": START_FAILED, "detail": str(exc)})


# --- the launch -----------------------------------------------------------------------------------------

def _git_identity(workspace: Workspace) -> dict[str, str]:
    """Commits an agent makes carry its own name (spec §16 "per-agent git identity")."""
    slug = re.sub(r"[^a-z0-9]+", "-", workspace.name.lower()).strip("-") or "agent"
    email = f"{slug}-{str(workspace.id)[:8]}@{GIT_EMAIL_DOMAIN}"
    return {"GIT_AUTHOR_NAME": workspace.name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": workspace.name, "GIT_COMMITTER_EMAIL": email}


def heartbeat_interval_seconds() -> float:
    """How often the runtimes we start beat: their default 30 s, or half of ``LIVENESS_TTL_SECONDS``
    when that is shorter, so one late beat never takes a healthy runtime offline (a 20 s deadline
    with 30 s beats would restart every runtime in a loop)."""
    return min(RUNTIME_HEARTBEAT_SECONDS, max(settings.LIVENESS_TTL_SECONDS / 2, 0.5))


def runtime_env(workspace: Workspace) -> dict[str, str]:
    """Spec §16's environment: the merged secrets (globals, then the workspace's own), the agent's
    git identity, then what the platform sets, which no secret overrides. Raises
    ``SecretDecryptError`` rather than start a runtime with a partial env."""
    env = {key: value for key, value in merged_env(workspace).items() if key not in PLATFORM_ENV}
    env.update(_git_identity(workspace))
    env.update({
        "WORKSPACE_ID": str(workspace.id),
        "PLATFORM_URL": settings.PLATFORM_URL,
        "MOLECULE_URL": settings.PLATFORM_URL,
        "TIER": str(workspace.tier),
        "HEARTBEAT_INTERVAL": f"{heartbeat_interval_seconds():g}",
        # What the platform's proxy presents on every call it forwards; our runtime refuses others.
        INBOUND_SECRET_ENV: inbound_secret(workspace.id),
    })
    if workspace.role:
        env["MOLECULE_AGENT_ROLE"] = workspace.role
    if workspace.parent_id:
        env["PARENT_ID"] = str(workspace.parent_id)  # team members learn their lead (spec §13 expand)
    return env


def issue_token(workspace: Workspace) -> str:
    """Issue-and-inject (spec §16): revoke every live token of the workspace, mint one; returns its
    plaintext, which only the launch carries (the row keeps a digest)."""
    with transaction.atomic():
        token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace_id=workspace.id))
        _token, plaintext = token_mint(workspace=workspace)
    return plaintext


def launch_for(workspace: Workspace) -> Launch:
    """Everything one start of ``workspace``'s runtime needs, for the backend to put in place."""
    env = runtime_env(workspace)
    return Launch(
        env=env,
        token=issue_token(workspace),
        template=templates.template_dir_for(workspace),
        config_yaml=templates.default_config_yaml(name=workspace.name, tier=workspace.tier or 1,
                                                  runtime=workspace.runtime),
        platform_keys=PLATFORM_ENV,
    )


# --- create, resume, restart: the start -----------------------------------------------------------------

def start_provisioning(*, workspace: Workspace, template: str = "") -> str | None:
    """Hand a new ``provisioning`` row to the provisioner; returns the failure reason, if any.

    The workspace's config (with its template, which expand, the file store and the launch read
    later) is recorded first. Without a provisioner that can start runtimes the row fails at once
    with the original's message and event, synchronously, before the response.
    """
    WorkspaceConfig.objects.update_or_create(
        workspace=workspace,
        defaults={"data": {"name": workspace.name, "runtime": workspace.runtime, "tier": workspace.tier,
                           "template": template}},
    )
    provisioner = get_provisioner()
    if provisioner.available:
        provision_on_commit([workspace.id])
        return None
    mark_failed(workspace.id, provisioner.unavailable_reason, {"error": provisioner.unavailable_event_error},
                only_from_provisioning=False)
    workspace.status, workspace.last_sample_error = WorkspaceStatus.FAILED, provisioner.unavailable_reason
    return provisioner.unavailable_reason


def provision_on_commit(workspace_ids, *, restart: bool = False, reason: str = "") -> None:
    """Queue :func:`provision_workspace` for each row once the caller's transaction commits (with
    ``restart`` the task stops the running runtime first; with ``reason`` the started runtime gets
    the restart-context briefing)."""
    for workspace_id in workspace_ids:
        transaction.on_commit(
            lambda wid=str(workspace_id): provision_workspace.delay(wid, restart=restart, reason=reason))


@shared_task(name="workspaces.tasks.provision_workspace")
def provision_workspace(workspace_id: str, restart: bool = False, reason: str = "") -> None:
    """Start a workspace still waiting in ``provisioning``.

    ``restart`` (``POST /workspaces/:id/restart``): the old runtime still ran when the request set
    ``provisioning``, and its heartbeat may have turned the row back online since (spec §7.2);
    stop it first and put the row back to ``provisioning`` (one event) if that happened.
    ``reason``: the runtime ran before (a restart, a wake); once started, :data:`runtime_restarted`
    is sent so it gets the restart-context briefing.
    """
    provisioner = get_provisioner()
    if restart:
        reason = reason or REASON_RESTART_REQUESTED
        current = Workspace.objects.filter(pk=workspace_id).first()
        if current is not None and current.status not in NOT_RESTARTED_STATUSES:
            provisioner.stop(current)
            mark_provisioning(Workspace.objects.filter(
                pk=workspace_id, status__in=[WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED, WorkspaceStatus.OFFLINE]))
    workspace = Workspace.objects.filter(pk=workspace_id, status=WorkspaceStatus.PROVISIONING).first()
    if workspace is None:
        return  # removed, paused or already online since the request: nothing to start
    try:
        provisioner.start(workspace, launch=launch_for(workspace))
    except Exception as exc:  # noqa: BLE001 - any failure becomes the workspace's error
        _failed_start(workspace_id, exc)
        return
    if reason:
        _announce_restart(workspace, reason)


def stop_runtimes(workspaces) -> None:
    """Stop the runtimes of ``workspaces`` (pause) and forget their cached URLs."""
    provisioner = get_provisioner()
    for workspace in workspaces:
        provisioner.stop(workspace)
    clear_workspace_keys([workspace.id for workspace in workspaces])


def remove_runtimes(workspaces) -> None:
    """Stop the runtimes of removed ``workspaces`` and drop what the backend keeps for them."""
    provisioner = get_provisioner()
    for workspace in workspaces:
        try:
            provisioner.remove(workspace)
        except Exception:  # noqa: BLE001 - the rows are removed; the orphan sweep reaps what is left
            log.exception("could not remove the runtime of workspace %s", workspace.id)
    clear_workspace_keys([workspace.id for workspace in workspaces])


def restart_runtimes_after_platform_start() -> int:
    """At platform start, restart the runtimes that should run but do not (``make run`` stops the
    local ones on exit); returns how many.

    Without this their rows would still say ``online`` with the old runtime's URL until a sweep
    noticed, and A2A would be refused by the URL filter as if the agent were a stranger.
    """
    provisioner = get_provisioner()
    if not provisioner.runs_local_runtimes:
        return 0
    should_run = provisioner.provisioned_workspace_ids() - provisioner.live_workspace_ids()
    with transaction.atomic():
        moved = mark_provisioning(
            Workspace.objects.filter(pk__in=should_run, status__in=RUNNING_STATUSES).exclude(runtime=EXTERNAL_RUNTIME))
        provision_on_commit([workspace.id for workspace in moved], restart=True, reason=REASON_PLATFORM_RESTARTED)
    return len(moved)


# --- RestartByID (spec §6.2) ----------------------------------------------------------------------------

def request_restarts(workspace_ids, *, reason: str = REASON_OFFLINE) -> int:
    """Ask for a restart of each workspace (secret changes, the sweeps, the proxy's dead-runtime
    branch); returns how many were queued. Only workspaces the backend provisioned itself are
    restarted: a runtime is never started for one that merely registered. Never blocks: the work
    is a Celery task. ``reason`` is what the restart-context briefing tells the agent."""
    provisioner = get_provisioner()
    ids = [str(workspace_id) for workspace_id in workspace_ids]
    if not provisioner.available or not ids:
        return 0
    ours = provisioner.provisioned_workspace_ids()
    queued = 0
    for workspace_id in ids:
        if workspace_id not in ours:
            log.info("workspace %s was not provisioned here; not restarting it", workspace_id)
            continue
        restart_workspace.delay(workspace_id, reason=reason)
        queued += 1
    return queued


@shared_task(name="workspaces.tasks.restart_workspace")
def restart_workspace(workspace_id: str, *, waited: bool = False, reason: str = REASON_OFFLINE) -> str:
    """Restart a workspace's runtime on the platform's own initiative; returns what it did.

    Skips removed/paused/hibernated rows, ``external`` runtimes and workspaces under a paused
    ancestor; concurrent calls for one workspace are skipped (a Redis try-lock); a row still
    ``provisioning`` gets 10 s first. A backend back-off (the local crash-loop back-off) defers
    the restart instead of dropping it. Then: stop, ``provisioning`` (one event), start, and
    :data:`runtime_restarted` (the restart-context briefing, spec §6.2).
    """
    provisioner = get_provisioner()
    if not provisioner.available:
        return "no provisioner"
    lock = restart_lock_key(workspace_id)
    try:
        if not get_redis().set(lock, "1", nx=True, ex=RESTART_LOCK_SECONDS):
            return "locked"
    except redis.RedisError:
        lock = None  # cannot lock: go on (the backend serialises its own operations)
    try:
        return _restart(workspace_id, provisioner, waited=waited, reason=reason)
    finally:
        if lock:
            try:
                get_redis().delete(lock)
            except redis.RedisError:
                pass


def _restart(workspace_id: str, provisioner, *, waited: bool, reason: str) -> str:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None or workspace.status in NOT_RESTARTED_STATUSES or workspace.runtime == EXTERNAL_RUNTIME:
        return "skipped"
    if selectors.paused_ancestor(workspace) is not None:
        return "skipped"
    delay = provisioner.restart_backoff_seconds(workspace.id)
    if delay > 0:
        restart_workspace.apply_async(args=[workspace_id], kwargs={"reason": reason}, countdown=math.ceil(delay))
        return "backoff"
    if workspace.status == WorkspaceStatus.PROVISIONING and not waited:
        restart_workspace.apply_async(args=[workspace_id], kwargs={"waited": True, "reason": reason},
                                      countdown=PROVISIONING_GRACE_SECONDS)
        return "waiting"

    prepared = []

    def prepare() -> Launch | None:
        if not mark_provisioning(Workspace.objects.filter(pk=workspace.id).exclude(status__in=NOT_RESTARTED_STATUSES)):
            return None  # the row changed under us (paused, removed…): leave it stopped
        prepared.append(True)
        return launch_for(workspace)

    try:
        provisioner.restart(workspace, prepare=prepare)
    except Exception as exc:  # noqa: BLE001 - any failure becomes the workspace's error
        _failed_start(workspace.id, exc)
        return "failed"
    if prepared:
        _announce_restart(workspace, reason)
    return "restarted"
