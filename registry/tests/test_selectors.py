"""The hierarchy rule ``can_communicate`` (spec §8.1) and the ancestry query behind it.

Tree used throughout::

    R1            R2        (roots: mutual siblings)
    ├── A
    │   └── A1
    │       └── A2
    └── B
        └── B1
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from molecule_site import adb
from registry.selectors import (
    MAX_ANCESTOR_HOPS,
    TREE_VERSION_SQL,
    acan_communicate,
    ancestries,
    can_communicate,
)
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> dict[str, Workspace]:
    r1 = Workspace.objects.create(name="R1")
    r2 = Workspace.objects.create(name="R2")
    a = Workspace.objects.create(name="A", parent=r1)
    b = Workspace.objects.create(name="B", parent=r1)
    a1 = Workspace.objects.create(name="A1", parent=a)
    a2 = Workspace.objects.create(name="A2", parent=a1)
    b1 = Workspace.objects.create(name="B1", parent=b)
    return {w.name: w for w in (r1, r2, a, b, a1, a2, b1)}


ALLOWED_BOTH_WAYS = [
    ("A", "B"),  # siblings
    ("R1", "R2"),  # roots are mutual siblings
    ("R1", "A"),  # parent / child
    ("A", "A1"),
    ("A1", "A2"),
    ("B", "B1"),
    ("R1", "A1"),  # grandparent / grandchild
    ("R1", "A2"),  # great-grandparent
    ("A", "A2"),
    ("R1", "B1"),
]

DENIED_BOTH_WAYS = [
    ("A1", "B1"),  # cousins
    ("A2", "B1"),  # second cousins-ish
    ("B", "A1"),  # uncle / nephew
    ("B", "A2"),
    ("A", "B1"),
    ("R2", "A"),  # another root's child
    ("R2", "A2"),
    ("R2", "B1"),
]


@pytest.mark.parametrize("name", ["R1", "R2", "A", "B", "A1", "A2", "B1"])
def test_can_communicate_with_self(tree, name):
    assert can_communicate(tree[name].id, tree[name].id) is True


@pytest.mark.parametrize(("first", "second"), ALLOWED_BOTH_WAYS)
def test_can_communicate_allows_siblings_and_lineage_in_both_directions(tree, first, second):
    assert can_communicate(tree[first].id, tree[second].id) is True
    assert can_communicate(tree[second].id, tree[first].id) is True


@pytest.mark.parametrize(("first", "second"), DENIED_BOTH_WAYS)
def test_can_communicate_denies_cross_team_in_both_directions(tree, first, second):
    assert can_communicate(tree[first].id, tree[second].id) is False
    assert can_communicate(tree[second].id, tree[first].id) is False


def test_can_communicate_accepts_string_ids(tree):
    assert can_communicate(str(tree["R1"].id), str(tree["A2"].id)) is True
    assert can_communicate(str(tree["A1"].id), str(tree["B1"].id)) is False


def test_can_communicate_denies_unknown_ids(tree):
    unknown = uuid.uuid4()

    assert can_communicate(unknown, tree["A"].id) is False
    assert can_communicate(tree["A"].id, unknown) is False
    assert can_communicate(tree["R1"].id, unknown) is False  # a root and a missing row are not siblings
    assert can_communicate(unknown, uuid.uuid4()) is False


@pytest.mark.parametrize("bad", ["not-a-uuid", "", None, 42, "'; DROP TABLE workspaces; --"])
def test_can_communicate_denies_non_uuid_ids(tree, bad):
    assert can_communicate(bad, tree["A"].id) is False
    assert can_communicate(tree["A"].id, bad) is False


def test_can_communicate_ignores_status(tree):
    Workspace.objects.filter(pk__in=[tree["A"].id, tree["A1"].id]).update(status=WorkspaceStatus.REMOVED)
    Workspace.objects.filter(pk=tree["B"].id).update(status=WorkspaceStatus.PAUSED)

    assert can_communicate(tree["A"].id, tree["B"].id) is True
    assert can_communicate(tree["A1"].id, tree["A"].id) is True
    assert can_communicate(tree["R1"].id, tree["A2"].id) is True
    assert can_communicate(tree["A1"].id, tree["B1"].id) is False


def test_can_communicate_follows_reparenting(tree):
    """The rule reads the current tree: moving B1 under A1 makes A1 its parent."""
    assert can_communicate(tree["A1"].id, tree["B1"].id) is False

    Workspace.objects.filter(pk=tree["B1"].id).update(parent=tree["A1"])

    assert can_communicate(tree["A1"].id, tree["B1"].id) is True
    assert can_communicate(tree["A2"].id, tree["B1"].id) is True  # now siblings
    assert can_communicate(tree["B"].id, tree["B1"].id) is False  # now uncle/nephew


@pytest.mark.parametrize(("caller", "target"), [("A2", "R1"), ("A1", "B1"), ("R1", "R2"), ("A", "B")])
def test_can_communicate_uses_one_query(tree, caller, target, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        can_communicate(tree[caller].id, tree[target].id)


def test_can_communicate_query_count_does_not_grow_with_depth(django_assert_max_num_queries):
    node = root = Workspace.objects.create(name="root")
    for depth in range(20):
        node = Workspace.objects.create(name=f"n{depth}", parent=node)

    with django_assert_max_num_queries(1):
        assert can_communicate(node.id, root.id) is True


def test_can_communicate_needs_no_query_for_self_or_bad_ids(tree, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert can_communicate(tree["A"].id, tree["A"].id) is True
        assert can_communicate("nope", tree["A"].id) is False


def _chain(length: int) -> list[Workspace]:
    """A single line root → n1 → … with ``length`` hops below the root."""
    nodes = [Workspace.objects.create(name="root")]
    for depth in range(length):
        nodes.append(Workspace.objects.create(name=f"n{depth + 1}", parent=nodes[-1]))
    return nodes


def test_can_communicate_finds_ancestor_at_hop_cap():
    nodes = _chain(MAX_ANCESTOR_HOPS)

    assert MAX_ANCESTOR_HOPS == 32
    assert can_communicate(nodes[-1].id, nodes[0].id) is True
    assert can_communicate(nodes[0].id, nodes[-1].id) is True


def test_can_communicate_stops_walking_beyond_hop_cap():
    nodes = _chain(MAX_ANCESTOR_HOPS + 1)

    assert can_communicate(nodes[-1].id, nodes[0].id) is False
    assert can_communicate(nodes[0].id, nodes[-1].id) is False
    assert can_communicate(nodes[-1].id, nodes[1].id) is True


def test_can_communicate_terminates_on_parent_cycle():
    a = Workspace.objects.create(name="cycle-a")
    b = Workspace.objects.create(name="cycle-b", parent=a)
    outsider = Workspace.objects.create(name="outsider")
    Workspace.objects.filter(pk=a.pk).update(parent=b)

    assert can_communicate(a.id, b.id) is True
    assert can_communicate(a.id, outsider.id) is False


# --- ancestries ------------------------------------------------------------------------------------

def test_ancestries_returns_chains_from_self_to_root(tree):
    chains = ancestries([tree["A2"].id, tree["R2"].id])

    assert chains[tree["A2"].id] == [
        (tree["A2"].id, tree["A1"].id),
        (tree["A1"].id, tree["A"].id),
        (tree["A"].id, tree["R1"].id),
        (tree["R1"].id, None),
    ]
    assert chains[tree["R2"].id] == [(tree["R2"].id, None)]


def test_ancestries_skips_unknown_and_malformed_ids(tree, django_assert_max_num_queries):
    unknown = uuid.uuid4()

    with django_assert_max_num_queries(1):
        chains = ancestries([str(tree["B"].id), unknown, "junk"])

    assert set(chains) == {tree["B"].id}


def test_ancestries_of_nothing_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert ancestries([]) == {}
        assert ancestries(["junk", None]) == {}


# --- acan_communicate: the cached hierarchy of the async paths ------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_cached_hierarchy_answers_follow_every_change_of_the_tree():
    """Answers are cached under the tree's version; the trigger moves it with every insert,
    delete or parent change, whoever makes it, so no answer outlives the tree it came from."""
    lead = Workspace.objects.create(name="Lead")
    dev = Workspace.objects.create(name="Dev", parent=lead)
    ops = Workspace.objects.create(name="Ops")
    allowed = async_to_sync(acan_communicate)

    assert allowed(dev.id, ops.id) is False  # nephew ↔ uncle
    with adb.capture_statements() as statements:
        assert allowed(dev.id, ops.id) is False
    assert statements == [TREE_VERSION_SQL]  # from the cache: only the version is read

    Workspace.objects.filter(pk=dev.pk).update(parent=None)  # raw UPDATE, no model hooks
    assert allowed(dev.id, ops.id) is True  # both roots now: siblings
    assert allowed(dev.id, ops.id) == can_communicate(dev.id, ops.id)

    Workspace.objects.filter(pk=dev.pk).update(parent=ops)
    assert allowed(dev.id, lead.id) is False
    assert allowed(dev.id, ops.id) is True  # child ↔ parent
    Workspace.objects.filter(pk=dev.pk).update(parent=None)
    assert allowed(lead.id, ops.id) is True  # cached as siblings (both roots)...
    lead.delete()
    assert allowed(lead.id, ops.id) is False  # ...and denied once one of them is gone
