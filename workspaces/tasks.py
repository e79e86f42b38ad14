"""Celery tasks of the workspaces app: provisioning runs here, never inside a request."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from activity.events import emit
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
def provision_workspace(workspace_id: str) -> None:
    """Ask the provisioner to start a workspace still waiting in ``provisioning``."""
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
