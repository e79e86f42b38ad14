"""Coordinator mode and parent context (spec/runtime.md §8.1).

A workspace whose peer list (``GET /registry/{self}/peers``) contains entries with
``parent_id == self`` is a coordinator: its prompt gets a ``## Your Team`` section plus the
mandatory coordination rules, and it gets the ``route_task_to_team`` tool. An unreachable
platform means "not a coordinator". Enforcement is by prompt only.

When ``PARENT_ID`` is set, the parent's ``GET /workspaces/{PARENT_ID}/shared-context`` files
(one level only) go into the prompt under ``## Parent Context``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from .platform import PlatformError

log = logging.getLogger(__name__)

DELEGATE_TOOL = "delegate_task"  # this runtime's name for the spec's delegate_to_workspace

COORDINATION_RULES = f"""### Coordination Rules — MANDATORY
1. You only delegate and synthesise: never do the team's work yourself.
2. Delegate every task with `{DELEGATE_TOOL}` (or `route_task_to_team`) before writing any analysis.
3. When a task spans several members, delegate to all of them in parallel and aggregate their answers.
4. If every member is offline, report which ones are offline; do not do the work yourself.
5. If a delegation fails, try another member; write your own brief summary only if no member responds, and never forward raw errors.
6. Your response is a synthesis of the team's work.
7. Reply in the language the caller used."""

NO_TEAM_ERROR = "No team members available. Handle this task yourself."


async def find_children(client: Any, workspace_id: str) -> list[dict]:
    """Peers whose ``parent_id`` is this workspace; [] when there is no client or it is unreachable."""
    if client is None or not workspace_id:
        return []
    try:
        peers = await client.peers()
    except (PlatformError, OSError, ValueError) as exc:
        log.warning("coordinator check skipped: cannot list peers (%s)", exc)
        return []
    return [p for p in peers if isinstance(p, dict) and p.get("parent_id") == workspace_id]


def _skills(peer: Mapping[str, Any]) -> list[str]:
    card = peer.get("agent_card")
    if not isinstance(card, dict):
        return []
    out = []
    for skill in card.get("skills") or []:
        if isinstance(skill, dict):
            name = skill.get("name") or skill.get("id")
            if name:
                out.append(str(name))
        elif skill:
            out.append(str(skill))
    return out


def member_line(peer: Mapping[str, Any]) -> str:
    line = f"- **{peer.get('name') or peer.get('id')}** (id: `{peer.get('id')}`, status: {peer.get('status') or 'unknown'})"
    skills = _skills(peer)
    if skills:
        line += "\n  Skills: " + ", ".join(skills)
    return line


def team_section(children: list[dict]) -> str:
    if not children:
        return ""
    lines = "\n".join(member_line(c) for c in children)
    return f"## Your Team (sub-workspaces you coordinate)\n{lines}\n\n{COORDINATION_RULES}"


def make_route_tool(children: list[dict], tools: Mapping[str, Callable]) -> Callable:
    """``route_task_to_team``; ``tools`` is the live tool map (looked up at call time for delegation)."""
    members = [{"id": c.get("id"), "name": c.get("name"), "status": c.get("status"), "skills": _skills(c)}
               for c in children]

    async def route_task_to_team(task: str, preferred_member_id: str = "") -> dict:
        """Route a task to your team: with preferred_member_id it delegates to that member at once;
        otherwise it lists the members so you can pick one and delegate."""
        if preferred_member_id:
            delegate = tools.get(DELEGATE_TOOL)
            if delegate is None:
                return {"success": False, "error": f"{DELEGATE_TOOL} is not available", "task": task}
            return await delegate(workspace_id=preferred_member_id, task=task)
        if not members:
            return {"success": False, "error": NO_TEAM_ERROR, "task": task, "members": []}
        return {"success": True, "action": "choose_member",
                "message": f"Pick the best-suited member and delegate the task with {DELEGATE_TOOL} "
                           "(or call route_task_to_team again with preferred_member_id).",
                "task": task, "members": [dict(m) for m in members]}

    return route_task_to_team


async def fetch_parent_context(client: Any, parent_id: str) -> list[dict]:
    """The parent's shared-context files ``[{path, content}]``; [] on any failure."""
    if client is None or not parent_id:
        return []
    try:
        items = await client.shared_context(parent_id)
    except (PlatformError, OSError, ValueError) as exc:
        log.warning("parent shared context unavailable (%s)", exc)
        return []
    return [i for i in items if isinstance(i, dict) and i.get("path") and isinstance(i.get("content"), str)]


def parent_context_section(items: list[dict]) -> str:
    if not items:
        return ""
    blocks = [f"### {i['path']}\n{i['content'].strip()}" for i in items]
    return ("## Parent Context\nShared context from your parent workspace (read-only):\n\n"
            + "\n\n".join(blocks))
