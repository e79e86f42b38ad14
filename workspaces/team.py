"""Team expand/collapse: grow a workspace's children from its template, or fold them away (spec §13)."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from activity.events import emit
from molecule_site.errors import ApiError
from workspaces import selectors, templates
from workspaces.models import CanvasLayout, Workspace, WorkspaceConfig, WorkspaceStatus
from workspaces.provisioning import remove_runtimes, start_provisioning
from workspaces.services import DEFAULT_RUNTIME


def _sub_workspaces(workspace: Workspace) -> list[dict]:
    directory = templates.template_dir_for(workspace)
    config = templates.read_config(directory) if directory else None
    if config is None:
        raise ApiError("no config found for workspace")
    entries = config.get("sub_workspaces")
    entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("config"), str)] if isinstance(entries, list) else []
    if not entries:
        raise ApiError("workspace has no sub_workspaces defined in config")
    return entries


@transaction.atomic
def team_expand(*, workspace_id: uuid.UUID) -> dict:
    """Create one child per ``sub_workspaces`` entry of the workspace's template and provision it."""
    parent = Workspace.objects.select_for_update().filter(pk=workspace_id).exclude(status=WorkspaceStatus.REMOVED).first()
    if parent is None:
        raise ApiError("workspace not found", status=404)
    children = []
    for entry in _sub_workspaces(parent):
        template = entry["config"]
        child_config = (
            templates.read_config(templates.configs_dir() / template)
            if templates.rel_path_is_valid(template) else None
        ) or {}
        runtime, _ = templates.template_runtime_and_model(child_config)
        child_id = uuid.uuid4()
        child = Workspace.objects.create(
            id=child_id,
            name=str(entry.get("name") or template),
            role=str(entry["role"]) if entry.get("role") else None,
            tier=parent.tier,
            runtime=runtime or DEFAULT_RUNTIME,
            parent=parent,
            awareness_namespace=f"workspace:{child_id}",
        )
        CanvasLayout.objects.create(workspace=child)
        WorkspaceConfig.objects.create(workspace=child, data={"template": template})
        emit("WORKSPACE_PROVISIONING", child.id, {"name": child.name, "tier": child.tier, "parent_id": str(parent.id)})
        start_provisioning(workspace=child, template=template)
        children.append({"id": str(child.id), "name": child.name, "role": child.role})
    emit("WORKSPACE_EXPANDED", parent.id, {"children": children})
    return {"status": "expanded", "children": children}


@transaction.atomic
def team_collapse(*, workspace_id: uuid.UUID) -> dict:
    """Remove the direct children (not recursive, tokens kept — as the original; removed rows' tokens
    no longer validate anyway)."""
    parent = Workspace.objects.filter(pk=workspace_id).exclude(status=WorkspaceStatus.REMOVED).first()
    if parent is None:
        raise ApiError("workspace not found", status=404)
    children = selectors.children_of(parent.id)
    ids = [c.id for c in children]
    Workspace.objects.filter(pk__in=ids).update(status=WorkspaceStatus.REMOVED, url="", updated_at=timezone.now())
    CanvasLayout.objects.filter(workspace_id__in=ids).delete()
    for child in children:
        emit("WORKSPACE_REMOVED", child.id, {})
    names = [c.name for c in children]
    emit("WORKSPACE_COLLAPSED", parent.id, {"removed_children": names})

    transaction.on_commit(lambda: remove_runtimes(children))
    return {"status": "collapsed", "removed": names}
