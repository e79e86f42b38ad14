"""Agent assignment: which model plays a workspace (spec §13 "Agents").

A workspace has at most one active agent (a partial unique constraint enforces it). Replacing
or removing keeps the old row as history; moving re-parents the active row.
"""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from activity.events import emit
from molecule_site.errors import ApiError
from workspaces.models import Agent, AgentStatus, Workspace


def _active(workspace_id: uuid.UUID, *, lock: bool = True) -> Agent | None:
    agents = Agent.objects.filter(workspace_id=workspace_id, status=AgentStatus.ACTIVE)
    return (agents.select_for_update() if lock else agents).first()


@transaction.atomic
def agent_assign(*, workspace_id: uuid.UUID, model: str) -> dict:
    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise ApiError("workspace not found", status=404)
    if _active(workspace_id) is not None:
        raise ApiError("workspace already has an active agent, use PATCH to replace", status=409)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(workspace_id=workspace_id, model=model)
    except IntegrityError:  # a concurrent assign won the race
        raise ApiError("workspace already has an active agent, use PATCH to replace", status=409) from None
    emit("AGENT_ASSIGNED", workspace_id, {"agent_id": str(agent.id), "model": model}, agent_id=agent.id)
    return {"agent_id": str(agent.id), "model": model}


@transaction.atomic
def agent_replace(*, workspace_id: uuid.UUID, model: str) -> dict:
    old = _active(workspace_id)
    if old is None:
        raise ApiError("no active agent to replace", status=404)
    Agent.objects.filter(pk=old.pk).update(status=AgentStatus.REPLACED, removed_at=timezone.now(), removal_reason="replaced")
    agent = Agent.objects.create(workspace_id=workspace_id, model=model)
    emit(
        "AGENT_REPLACED", workspace_id, {"agent_id": str(agent.id), "model": model, "old_model": old.model},
        agent_id=agent.id,
    )
    return {"agent_id": str(agent.id), "model": model, "old_model": old.model}


@transaction.atomic
def agent_remove(*, workspace_id: uuid.UUID) -> dict:
    agent = _active(workspace_id)
    if agent is None:
        raise ApiError("no active agent to remove", status=404)
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.REMOVED, removed_at=timezone.now(), removal_reason="removed")
    emit("AGENT_REMOVED", workspace_id, {"agent_id": str(agent.id), "model": agent.model}, agent_id=agent.id)
    return {"status": "removed", "agent_id": str(agent.id)}


@transaction.atomic
def agent_move(*, workspace_id: uuid.UUID, target_workspace_id: uuid.UUID) -> dict:
    if not Workspace.objects.filter(pk=target_workspace_id).exists():
        raise ApiError("target workspace not found", status=404)
    if _active(target_workspace_id) is not None:
        raise ApiError("target workspace already has an active agent", status=409)
    agent = _active(workspace_id)
    if agent is None:
        raise ApiError("no active agent in source workspace", status=404)
    try:
        with transaction.atomic():
            Agent.objects.filter(pk=agent.pk).update(workspace_id=target_workspace_id)
    except IntegrityError:  # the target got an agent meanwhile
        raise ApiError("target workspace already has an active agent", status=409) from None
    moved = {"agent_id": str(agent.id), "model": agent.model}
    emit("AGENT_MOVED", workspace_id, {**moved, "target_workspace_id": str(target_workspace_id)},
         agent_id=agent.id, target_id=target_workspace_id)
    emit("AGENT_MOVED", target_workspace_id, {**moved, "source_workspace_id": str(workspace_id)},
         agent_id=agent.id, target_id=workspace_id)
    return {**moved, "from_workspace": str(workspace_id), "to_workspace": str(target_workspace_id)}
