"""The org tree as the canvas draws it: one :class:`Card` per workspace, children inside parents.

Reads only (a selector). Rows with no position yet (x = y = 0: org imports, API creates without
``canvas``) are placed here and flagged ``placed_here``, so the page saves the place with the
same ``PATCH {x,y}`` a drag sends; a GET never writes. A child stored entirely outside its
parent is drawn in the next free grid slot but not saved there: while a team is being created
one call at a time, a sibling's stored place can be outside the parent only until the siblings
before it arrive, and saving the slot would overwrite the place it was given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from registry.selectors import load_samples
from workspaces import selectors, templates
from workspaces.canvas import layout
from workspaces.models import CanvasLayout, Workspace, WorkspaceStatus

STATUS_LABELS = {
    WorkspaceStatus.ONLINE: "Online",
    WorkspaceStatus.OFFLINE: "Offline",
    WorkspaceStatus.PAUSED: "Paused",
    WorkspaceStatus.DEGRADED: "Degraded",
    WorkspaceStatus.FAILED: "Failed",
    WorkspaceStatus.PROVISIONING: "Starting",
    WorkspaceStatus.HIBERNATED: "Hibernated",
    WorkspaceStatus.HIBERNATING: "Hibernating",
    WorkspaceStatus.AWAITING_AGENT: "Awaiting agent",
}
MAX_SKILL_CHIPS = 4


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " ").title())


@dataclass
class Card:
    workspace: Workspace
    depth: int = 0
    children: list[Card] = field(default_factory=list)
    abs_x: float = 0
    abs_y: float = 0
    x: float = 0  # relative to the parent card (absolute for roots)
    y: float = 0
    w: float = layout.LEAF_W
    h: float = layout.LEAF_H
    collapsed: bool = False
    placed_here: bool = False
    provision_timeout_ms: int | None = None
    load: list[int] = field(default_factory=list)  # active tasks of recent heartbeats, oldest first

    @property
    def id(self) -> str:
        return str(self.workspace.id)

    @property
    def descendants(self) -> int:
        return sum(1 + child.descendants for child in self.children)

    @property
    def status_label(self) -> str:
        return status_label(self.workspace.status)

    @property
    def runtime(self) -> str:
        card = self.workspace.agent_card if isinstance(self.workspace.agent_card, dict) else {}
        return self.workspace.runtime or str(card.get("runtime") or "")

    @property
    def skills(self) -> list[str]:
        card = self.workspace.agent_card if isinstance(self.workspace.agent_card, dict) else {}
        names = []
        for skill in card.get("skills") or []:
            if isinstance(skill, dict) and (skill.get("name") or skill.get("id")):
                names.append(str(skill.get("name") or skill.get("id")))
        return names

    @property
    def shown_skills(self) -> list[str]:
        return self.skills[:MAX_SKILL_CHIPS]

    @property
    def more_skills(self) -> int:
        return max(0, len(self.skills) - MAX_SKILL_CHIPS)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


def _stored_position(workspace: Workspace) -> tuple[float, float, bool]:
    try:
        row = workspace.layout
    except CanvasLayout.DoesNotExist:
        return 0.0, 0.0, False
    return row.x, row.y, row.collapsed


def _size(card: Card) -> None:
    """Post-order: lay out ``card``'s children (keeping stored positions that touch the parent,
    grid-placing the rest) and size the parent to fit them."""
    for child in card.children:
        _size(child)
    if not card.children:
        card.w, card.h = layout.LEAF_W, layout.LEAF_H
        return
    # A child is kept where it is stored if its box touches the parent's box as it grows with
    # the children already kept (a third-row child does not touch a minimum-size parent).
    kept: list[Card] = []
    pending = [c for c in card.children if not c.placed_here]
    for child in pending:
        child.x, child.y = child.abs_x - card.abs_x, child.abs_y - card.abs_y
    changed = True
    while changed:
        changed = False
        w, h = layout.parent_size([layout.Box(c.x, c.y, c.w, c.h) for c in kept])
        for child in list(pending):
            if layout.Box(child.x, child.y, child.w, child.h).overlaps(layout.Box(0, 0, w, h)):
                kept.append(child)
                pending.remove(child)
                changed = True
    sizes = [(c.w, c.h) for c in card.children]
    for child in card.children:
        if child in kept:
            continue
        child.x, child.y = layout.free_slot([layout.Box(c.x, c.y, c.w, c.h) for c in kept], sizes, (child.w, child.h))
        kept.append(child)
    card.w, card.h = layout.parent_size([layout.Box(c.x, c.y, c.w, c.h) for c in card.children])
    if card.collapsed:
        card.w, card.h = layout.LEAF_W, layout.LEAF_H


def _absolutes(card: Card, parent: Card | None) -> None:
    if parent is not None:
        card.abs_x, card.abs_y = parent.abs_x + card.x, parent.abs_y + card.y
        card.depth = parent.depth + 1
    for child in card.children:
        _absolutes(child, card)


def card_forest(rows: list[Workspace] | None = None) -> list[Card]:
    """Root cards (oldest first), each with its subtree laid out. ``rows`` defaults to every
    workspace that is not removed; a child whose parent is not among them is a root."""
    rows = selectors.workspace_list() if rows is None else rows
    timeouts = templates.provision_timeouts_ms(rows)
    cards: dict[uuid.UUID, Card] = {}
    for workspace in rows:
        x, y, collapsed = _stored_position(workspace)
        cards[workspace.id] = Card(
            workspace=workspace, abs_x=x, abs_y=y, collapsed=collapsed,
            placed_here=(x == 0 and y == 0), provision_timeout_ms=timeouts.get(workspace.id),
        )
    for workspace_id, load in load_samples(cards).items():  # one Redis round trip for the page
        cards[uuid.UUID(workspace_id)].load = load
    roots = []
    for workspace in rows:
        card = cards[workspace.id]
        parent = cards.get(workspace.parent_id) if workspace.parent_id else None
        (parent.children if parent is not None else roots).append(card)
    reached = {card.workspace.id for root in roots for card in root.walk()}
    for card in cards.values():  # a parent cycle in corrupt data: draw its members as roots
        if card.workspace.id not in reached:
            for other in cards.values():
                if card in other.children:
                    other.children.remove(card)
            roots.append(card)
            reached.update(c.workspace.id for c in card.walk())
    for root in roots:
        _size(root)
    placed = [r for r in roots if not r.placed_here]
    unplaced = [r for r in roots if r.placed_here]
    start_x = max([r.abs_x + r.w for r in placed], default=layout.ROOT_ORIGIN[0] - layout.ROOT_GAP) + layout.ROOT_GAP
    for root, edge in zip(unplaced, layout.row_layout([r.w for r in unplaced], start_x)):
        root.abs_x, root.abs_y = edge, layout.ROOT_ORIGIN[1]
    for root in roots:
        root.x, root.y = root.abs_x, root.abs_y
        _absolutes(root, None)
    return roots


def find_card(forest: list[Card], workspace_id: str) -> Card | None:
    for root in forest:
        for card in root.walk():
            if card.id == workspace_id:
                return card
    return None


def counts(forest: list[Card]) -> dict[str, int]:
    """Workspaces per status for the toolbar, plus ``total``."""
    tally: dict[str, int] = {"total": 0}
    for root in forest:
        for card in root.walk():
            tally["total"] += 1
            tally[card.workspace.status] = tally.get(card.workspace.status, 0) + 1
    return tally
