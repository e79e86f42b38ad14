"""The org tree as the canvas draws it (workspaces/canvas/cards.py)."""

from __future__ import annotations

import pytest

from workspaces.canvas.cards import card_forest, counts, find_card
from workspaces.models import CanvasLayout, Workspace

pytestmark = pytest.mark.django_db


def _ws(name, parent=None, x=0.0, y=0.0, collapsed=False, status="online", **fields):
    workspace = Workspace.objects.create(name=name, parent=parent, status=status, **fields)
    CanvasLayout.objects.create(workspace=workspace, x=x, y=y, collapsed=collapsed)
    return workspace


def test_children_keep_their_stored_positions_relative_to_the_parent_and_the_parent_fits_them():
    root = _ws("Root", x=1000, y=500)
    _ws("A", root, x=1016, y=630)
    _ws("B", root, x=1270, y=630)
    _ws("C", root, x=1016, y=774)  # third row: outside a minimum-size parent, inside the grown one
    [tree] = card_forest()
    a, b, c = tree.children
    assert (a.x, a.y, b.x, b.y, c.x, c.y) == (16, 130, 270, 130, 16, 274)
    assert not any(card.placed_here for card in tree.walk())
    assert (tree.w, tree.h) == (270 + 240 + 16, 274 + 130 + 16)
    assert tree.descendants == 3 and a.depth == 1


def test_a_child_stored_entirely_outside_its_parent_is_drawn_in_the_next_free_grid_slot():
    root = _ws("Root", x=100, y=100)
    _ws("Kept", root, x=116, y=230)
    lost = _ws("Lost", root, x=5000, y=5000)
    [tree] = card_forest()
    card = find_card([tree], str(lost.id))
    assert (card.x, card.y) == (16 + 240 + 14, 130)
    assert not card.placed_here  # drawn there, not saved there (its siblings may still be arriving)
    assert (card.abs_x, card.abs_y) == (100 + 270, 100 + 130)


def test_a_child_partly_outside_is_left_where_it_is():
    root = _ws("Root", x=0.5, y=0.5)
    _ws("Edge", root, x=-99.5, y=50.5)
    [tree] = card_forest()
    [edge] = tree.children
    assert (edge.x, edge.y) == (-100, 50) and not edge.placed_here


def test_roots_without_a_position_are_laid_in_a_row_right_of_the_placed_ones():
    _ws("Placed", x=100, y=100)
    first = _ws("New 1")
    second = _ws("New 2")
    forest = card_forest()
    by_id = {card.id: card for card in forest}
    assert (by_id[str(first.id)].abs_x, by_id[str(first.id)].abs_y) == (100 + 240 + 80, 100)
    assert by_id[str(second.id)].abs_x == 100 + 240 + 80 + 240 + 80
    assert by_id[str(first.id)].placed_here and not by_id[forest[0].id].placed_here


def test_a_collapsed_parent_is_leaf_sized_and_still_counts_its_descendants():
    root = _ws("Team", x=10, y=10, collapsed=True)
    child = _ws("Child", root, x=26, y=140)
    _ws("Grandchild", child, x=42, y=270)
    [tree] = card_forest()
    assert (tree.w, tree.h) == (240, 130) and tree.collapsed
    assert tree.descendants == 2
    assert tree.children[0].children[0].depth == 2


def test_removed_workspaces_are_not_drawn_and_their_children_become_roots():
    gone = _ws("Gone", x=10, y=10, status="removed")
    orphan = _ws("Orphan", gone, x=26, y=140)
    forest = card_forest()
    assert [card.id for card in forest] == [str(orphan.id)]
    assert counts(forest) == {"total": 1, "online": 1}


def test_a_parent_cycle_in_corrupt_data_still_draws_every_member_once():
    a = _ws("A", x=10, y=10)
    b = _ws("B", a, x=26, y=140)
    Workspace.objects.filter(pk=a.pk).update(parent=b)
    forest = card_forest()
    drawn = [card.id for root in forest for card in root.walk()]
    assert sorted(drawn) == sorted([str(a.id), str(b.id)])


def test_card_content_comes_from_the_row_and_its_agent_card():
    ws = _ws("Agent", x=5, y=5, runtime="", agent_card={
        "runtime": "crewai", "skills": [{"id": "a"}, {"name": "B"}, {"id": "c"}, {"id": "d"}, {"id": "e"}, "junk"]})
    [card] = card_forest()
    assert card.runtime == "crewai"  # the row's runtime is blank, so the agent card's
    assert card.shown_skills == ["a", "B", "c", "d"] and card.more_skills == 1
    assert card.status_label == "Online" and card.id == str(ws.id)
