"""Reads of platform instructions: the admin's list and one row, and the Markdown a workspace's
runtime puts first in its system prompt (``instructions_resolve``)."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, Value, When

from instructions.models import InstructionScope, PlatformInstruction
from workspaces.selectors import as_uuid

# Global rules first, then the workspace's own; within a scope the higher priority, then the oldest.
_SCOPE_RANK = Case(When(scope=InstructionScope.GLOBAL, then=Value(0)), default=Value(1), output_field=IntegerField())
RESOLVE_ORDER = (_SCOPE_RANK.asc(), "-priority", "created_at", "id")


def instruction_row(instruction: PlatformInstruction) -> dict:
    return {
        "id": str(instruction.id),
        "scope": instruction.scope,
        "workspace_id": str(instruction.workspace_id) if instruction.workspace_id else None,
        "title": instruction.title,
        "content": instruction.content,
        "priority": instruction.priority,
        "enabled": instruction.enabled,
        "created_at": instruction.created_at,
        "updated_at": instruction.updated_at,
    }


def instruction_get(instruction_id) -> PlatformInstruction | None:
    parsed = as_uuid(instruction_id)
    return None if parsed is None else PlatformInstruction.objects.filter(pk=parsed).first()


def instruction_list(*, scope: str = "", workspace_id=None) -> list[dict]:
    """Every instruction (disabled ones too), in resolve order; ``scope`` / ``workspace_id`` filter."""
    rows = PlatformInstruction.objects.all()
    if scope:
        rows = rows.filter(scope=scope)
    if workspace_id is not None:
        rows = rows.filter(workspace_id=workspace_id)
    return [instruction_row(row) for row in rows.order_by(*RESOLVE_ORDER)]


def instructions_resolve(*, workspace_id) -> str:
    """The enabled rules that apply to ``workspace_id`` as Markdown: ``## <title>`` then the content,
    global rules first, then the workspace's, each by priority. Empty when there is none."""
    rows = (PlatformInstruction.objects.filter(enabled=True)
            .filter(Q(scope=InstructionScope.GLOBAL) | Q(scope=InstructionScope.WORKSPACE, workspace_id=workspace_id))
            .order_by(*RESOLVE_ORDER).values_list("title", "content"))
    return "\n\n".join(f"## {title}\n\n{content.strip()}" for title, content in rows)
