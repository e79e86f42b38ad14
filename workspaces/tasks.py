"""Celery tasks of the workspaces app: provisioning runs here, never inside a request."""

from __future__ import annotations

import logging
import math

import redis
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from activity.events import emit
from molecule_site.redis_client import get_redis
from registry.redis_keys import clear_workspace_keys
from workspaces import selectors
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner

log = logging.getLogger(__name__)


def provisioning_env(workspace: Workspace) -> dict[str, str]:
    """The variables every runtime needs to find the platform and itself."""
    env = {"WORKSPACE_ID": str(workspace.id), "PLATFORM_URL": settings.PLATFORM_URL}
    if workspace.parent_id:
        env["PARENT_ID"] = str(workspace.parent_id)  # team members learn their lead (spec §13 expand)
    return env


@shared_task
def provision_workspace(workspace_id: str, restart: bool = False) -> None:
    """Ask the provisioner to start a workspace still waiting in ``provisioning``.

    ``restart`` (``POST /workspaces/:id/restart``): the old runtime still ran when the request set
    ``provisioning``, and its heartbeat may have turned the row back online since (spec §7.2);
    stop it first and put the row back to ``provisioning`` (one event) if that happened.
    """
    if restart:
        _stop_before_restart(workspace_id)
    workspace = Workspace.objects.filter(pk=workspace_id, status=WorkspaceStatus.PROVISIONING).first()
    if workspace is None:
        return  # removed, paused or already online since the request: nothing to start
    try:
        get_provisioner().start(workspace, env=provisioning_env(workspace))
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes the workspace's error
        log.exception("provisioning workspace %s failed", workspace_id)
        with transaction.atomic():
            updated = Workspace.objects.filter(pk=workspace_id, status=WorkspaceStatus.PROVISIONING).update(
                status=WorkspaceStatus.FAILED, last_sample_error=str(exc)
            )
            if updated:
                emit("WORKSPACE_PROVISION_FAILED", workspace_id, {"error": str(exc)})


def _stop_before_restart(workspace_id: str) -> None:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None or workspace.status in NOT_RESTARTED_STATUSES:
        return
    get_provisioner().stop(workspace)
    with transaction.atomic():
        changed = Workspace.objects.filter(
            pk=workspace.id, status__in=[WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED, WorkspaceStatus.OFFLINE]
        ).update(status=WorkspaceStatus.PROVISIONING, url="", updated_at=timezone.now())
        if changed:
            emit("WORKSPACE_PROVISIONING", workspace.id,
                 {"name": workspace.name, "tier": workspace.tier, "runtime": workspace.runtime})
    if changed:
        clear_workspace_keys([workspace.id])


# --- RestartByID (spec §6.2) -------------------------------------------------------------------------

EXTERNAL_RUNTIME = "external"
NOT_RESTARTED_STATUSES = (WorkspaceStatus.REMOVED, WorkspaceStatus.PAUSED, WorkspaceStatus.HIBERNATED)
RESTART_LOCK_SECONDS = 120
PROVISIONING_GRACE_SECONDS = 10


def restart_lock_key(workspace_id) -> str:
    return f"ws:{workspace_id}:restart-lock"


@shared_task
def restart_workspace(workspace_id: str, *, waited: bool = False) -> str:
    """Restart a workspace's runtime on the platform's own initiative (spec §6.2 ``RestartByID``).

    Asked by the liveness and health sweeps, secret changes, the proxy (dead runtime, hibernated
    wake). Skips removed/paused/hibernated rows, ``external`` runtimes and workspaces under a
    paused ancestor; concurrent calls for one workspace are skipped (a Redis try-lock); a row
    still ``provisioning`` gets 10 s first. A backend back-off (the local backend's crash-loop
    back-off) defers the restart instead of dropping it. Then: stop, status ``provisioning`` +
    url '' + ``WORKSPACE_PROVISIONING {name,tier,runtime}`` (one event, after commit), start.
    The original's restart-context A2A message is not sent. Returns what it did, for logs and tests.
    """
    provisioner = get_provisioner()
    if not provisioner.available:
        return "no provisioner"
    lock = restart_lock_key(workspace_id)
    try:
        if not get_redis().set(lock, "1", nx=True, ex=RESTART_LOCK_SECONDS):
            return "locked"
    except redis.RedisError:
        lock = None  # cannot lock: go on (the backend serialises its own process operations)
    try:
        return _restart(workspace_id, provisioner, waited=waited)
    finally:
        if lock:
            try:
                get_redis().delete(lock)
            except redis.RedisError:
                pass


def _restart(workspace_id: str, provisioner, *, waited: bool) -> str:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None or workspace.status in NOT_RESTARTED_STATUSES or workspace.runtime == EXTERNAL_RUNTIME:
        return "skipped"
    if selectors.paused_ancestor(workspace) is not None:
        return "skipped"
    delay = provisioner.restart_backoff_seconds(workspace.id)
    if delay > 0:
        restart_workspace.apply_async(args=[workspace_id], countdown=math.ceil(delay))
        return "backoff"
    if workspace.status == WorkspaceStatus.PROVISIONING and not waited:
        restart_workspace.apply_async(args=[workspace_id], kwargs={"waited": True}, countdown=PROVISIONING_GRACE_SECONDS)
        return "waiting"

    def mark_provisioning() -> bool:
        with transaction.atomic():
            changed = (
                Workspace.objects.filter(pk=workspace.id)
                .exclude(status__in=NOT_RESTARTED_STATUSES)
                .update(status=WorkspaceStatus.PROVISIONING, url="", updated_at=timezone.now())
            )
            if changed:
                emit("WORKSPACE_PROVISIONING", workspace.id,
                     {"name": workspace.name, "tier": workspace.tier, "runtime": workspace.runtime})
        if changed:
            clear_workspace_keys([workspace.id])
        return bool(changed)

    try:
        provisioner.restart(workspace, env=provisioning_env(workspace), on_stopped=mark_provisioning)
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes the workspace's error
        log.exception("restarting workspace %s failed", workspace_id)
        with transaction.atomic():
            updated = Workspace.objects.filter(pk=workspace.id, status=WorkspaceStatus.PROVISIONING).update(
                status=WorkspaceStatus.FAILED, last_sample_error=str(exc)
            )
            if updated:
                emit("WORKSPACE_PROVISION_FAILED", workspace.id, {"error": str(exc)})
        return "failed"
    return "restarted"
