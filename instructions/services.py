"""Writes of platform instructions (admin only: ``/instructions`` and the operator admin).

Nothing is emitted: runtimes read the resolved text at boot (``GET /workspaces/:id/instructions/
resolve``), so a change reaches an agent at its next start — restart it to apply one at once.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from instructions.models import MAX_CONTENT, MAX_TITLE, TEAM_RESERVED, InstructionScope, PlatformInstruction
from molecule_site.errors import ApiError
from workspaces.models import Workspace

SCOPE_ERROR = "scope must be global or workspace"
WORKSPACE_REQUIRED = "workspace_id is required for workspace scope"
WORKSPACE_FORBIDDEN = "a global instruction has no workspace_id"
TITLE_ERROR = f"title is required: one line of at most {MAX_TITLE} characters"
CONTENT_ERROR = f"content is required: Markdown of at most {MAX_CONTENT} characters"
FIELDS = ("scope", "workspace_id", "title", "content", "priority", "enabled")


def _check(instruction: PlatformInstruction) -> None:
    """The wire's messages for what the model's constraints refuse (checked before the database)."""
    if instruction.scope == "team":
        raise ApiError(TEAM_RESERVED)
    if instruction.scope not in InstructionScope.values:
        raise ApiError(SCOPE_ERROR)
    if instruction.scope == InstructionScope.WORKSPACE and instruction.workspace_id is None:
        raise ApiError(WORKSPACE_REQUIRED)
    if instruction.scope == InstructionScope.GLOBAL and instruction.workspace_id is not None:
        raise ApiError(WORKSPACE_FORBIDDEN)
    if instruction.workspace_id is not None and not Workspace.objects.filter(pk=instruction.workspace_id).exists():
        raise ApiError("workspace not found")
    title = instruction.title.strip()
    if not title or len(title) > MAX_TITLE or "\n" in title or "\r" in title:
        raise ApiError(TITLE_ERROR)
    if not instruction.content.strip() or len(instruction.content) > MAX_CONTENT:
        raise ApiError(CONTENT_ERROR)
    instruction.title = title
    try:
        instruction.full_clean(exclude=["workspace"])
    except ValidationError as exc:  # anything the checks above do not name
        raise ApiError("; ".join(exc.messages)) from None


@transaction.atomic
def instruction_create(*, scope: str, title: str, content: str, workspace_id=None, priority: int = 0,
                       enabled: bool = True) -> PlatformInstruction:
    return instruction_save(instruction=PlatformInstruction(
        scope=scope, workspace_id=workspace_id, title=title, content=content, priority=priority, enabled=enabled))


@transaction.atomic
def instruction_update(*, instruction: PlatformInstruction, **changes) -> PlatformInstruction:
    """Set the given fields (any of ``FIELDS``); a scope change must bring a matching workspace_id."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown instruction fields: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(instruction, name, value)
    return instruction_save(instruction=instruction)


@transaction.atomic
def instruction_save(*, instruction: PlatformInstruction) -> PlatformInstruction:
    """Check and write ``instruction`` as it stands (the operator admin's add and change forms)."""
    _check(instruction)
    instruction.save()
    return instruction


@transaction.atomic
def instruction_delete(*, instruction: PlatformInstruction) -> None:
    instruction.delete()
