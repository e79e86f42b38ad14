"""Memory reads: scope visibility on an org tree, full-text ranking, key/value expiry (spec §11).

Tree used for visibility::

    R               S       (roots)
    ├── A
    │   └── A1
    └── B

TEAM rule (spec §11.1): P = the reader's parent, or the reader itself when it is a root; the
reader sees TEAM rows of non-removed workspaces whose id or parent_id is P. Hence:

    reader  P   sees TEAM rows of
    R       R   R, A, B      (itself and its children; not the grandchild A1, not the other root S)
    A       R   R, A, B      (parent and siblings; not its own child A1)
    B       R   R, A, B
    A1      A   A, A1        (parent and itself; not the grandparent R, not the uncle B)
    S       S   S
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from memory import selectors
from memory.models import AgentMemory, WorkspaceMemory
from registry.selectors import can_communicate
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> dict[str, Workspace]:
    r = Workspace.objects.create(name="R")
    s = Workspace.objects.create(name="S")
    a = Workspace.objects.create(name="A", parent=r)
    b = Workspace.objects.create(name="B", parent=r)
    a1 = Workspace.objects.create(name="A1", parent=a)
    return {w.name: w for w in (r, s, a, b, a1)}


@pytest.fixture
def memories(tree) -> dict[str, Workspace]:
    """Each workspace writes one LOCAL and one TEAM memory; the roots one GLOBAL each."""
    for name, workspace in tree.items():
        AgentMemory.objects.create(workspace=workspace, content=f"local of {name}", scope="LOCAL")
        AgentMemory.objects.create(workspace=workspace, content=f"team of {name}", scope="TEAM")
        if workspace.parent_id is None:
            AgentMemory.objects.create(workspace=workspace, content=f"global of {name}", scope="GLOBAL")
    return tree


def contents(workspace: Workspace, **filters) -> set[str]:
    return {item["content"] for item in selectors.agent_memory_search(workspace_id=workspace.id, **filters)}


TEAM_VISIBILITY = {
    "R": {"R", "A", "B"},
    "A": {"R", "A", "B"},
    "B": {"R", "A", "B"},
    "A1": {"A", "A1"},
    "S": {"S"},
}


@pytest.mark.parametrize(("reader", "owners"), TEAM_VISIBILITY.items())
def test_team_scope_follows_the_parent_set_rule(memories, reader, owners):
    assert contents(memories[reader], scope="TEAM") == {f"team of {owner}" for owner in owners}


def test_siblings_share_team_memories_but_cousins_and_nephews_do_not(memories):
    assert "team of B" in contents(memories["A"], scope="TEAM")  # sibling
    assert "team of A1" not in contents(memories["B"], scope="TEAM")  # nephew
    assert "team of B" not in contents(memories["A1"], scope="TEAM")  # uncle
    assert "team of A" not in contents(memories["S"], scope="TEAM")  # another root's child


def test_team_scope_skips_removed_workspaces(memories):
    Workspace.objects.filter(pk=memories["B"].id).update(status=WorkspaceStatus.REMOVED)
    assert contents(memories["A"], scope="TEAM") == {"team of R", "team of A"}


def test_local_memories_are_private(memories):
    assert contents(memories["A"], scope="LOCAL") == {"local of A"}
    for reader in memories.values():
        for scope in ("TEAM", "GLOBAL"):
            assert not {c for c in contents(reader, scope=scope) if c.startswith("local of")}


def test_without_a_scope_a_workspace_gets_all_of_its_own_rows(memories):
    root = memories["R"]
    found = selectors.agent_memory_search(workspace_id=root.id)
    assert {item["scope"] for item in found} == {"LOCAL", "TEAM", "GLOBAL"}
    assert {item["workspace_id"] for item in found} == {str(root.id)}


def test_global_memories_are_visible_everywhere_and_wrapped_with_their_origin(memories):
    expected = {
        f"[MEMORY id={m.id} scope=GLOBAL from={m.workspace_id}]: {m.content}"
        for m in AgentMemory.objects.filter(scope="GLOBAL")
    }
    assert len(expected) == 2
    for reader in memories.values():
        assert contents(reader, scope="GLOBAL") == expected


def test_global_rows_are_wrapped_in_an_own_listing_too(memories):
    root = memories["S"]
    memory = AgentMemory.objects.get(workspace=root, scope="GLOBAL")
    wrapped = [item["content"] for item in selectors.agent_memory_search(workspace_id=root.id) if item["scope"] == "GLOBAL"]
    assert wrapped == [f"[MEMORY id={memory.id} scope=GLOBAL from={root.id}]: global of S"]


def test_communicable_ids_agrees_with_can_communicate_for_every_pair(tree):
    # a deeper tree than the fixture: cousins, uncles and a great-grandchild
    tree["B1"] = Workspace.objects.create(name="B1", parent=tree["B"])
    tree["A2"] = Workspace.objects.create(name="A2", parent=tree["A1"])
    ids = [w.id for w in tree.values()] + [uuid.uuid4()]  # and one that does not exist
    for caller in ids:
        expected = {target for target in ids if can_communicate(caller, target)}
        assert selectors.communicable_ids(caller, ids) == expected
    for caller, target in itertools.product(ids, repeat=2):
        assert (target in selectors.communicable_ids(caller, [target])) == can_communicate(caller, target)


def test_team_reads_take_the_same_number_of_queries_whatever_the_team_size(tree, django_assert_num_queries):
    for n in range(20):
        child = Workspace.objects.create(name=f"R-child-{n}", parent=tree["R"])
        AgentMemory.objects.create(workspace=child, content=f"team of child {n}", scope="TEAM")
    with django_assert_num_queries(2):  # the team, then one ancestry query for all of it
        owners = selectors.team_owner_ids(tree["A"].id)
    assert len(owners) == 23
    with django_assert_num_queries(3):
        found = selectors.agent_memory_search(workspace_id=tree["A"].id, scope="TEAM")
    assert len(found) == 20


def test_unknown_or_malformed_workspace_ids_see_nothing(memories):
    for scope in ("", "LOCAL", "TEAM"):
        assert selectors.agent_memory_search(workspace_id=uuid.uuid4(), scope=scope) == []
        assert selectors.agent_memory_search(workspace_id="not-a-uuid", scope=scope) == []


def test_namespace_filters(tree):
    a = tree["A"]
    AgentMemory.objects.create(workspace=a, content="in ops", scope="LOCAL", namespace="ops")
    AgentMemory.objects.create(workspace=a, content="in general", scope="LOCAL")
    assert contents(a, namespace="ops") == {"in ops"}
    assert contents(a, namespace="general") == {"in general"}
    assert contents(a) == {"in ops", "in general"}


def test_item_shape(tree):
    memory = AgentMemory.objects.create(workspace=tree["A"], content="fact", scope="TEAM", namespace="ops")
    [item] = selectors.agent_memory_search(workspace_id=tree["A"].id)
    assert item == {
        "id": str(memory.id),
        "workspace_id": str(tree["A"].id),
        "content": "fact",
        "scope": "TEAM",
        "namespace": "ops",
        "created_at": item["created_at"],
    }
    assert item["created_at"].endswith("Z")


# --- ordering and search -------------------------------------------------------------------------

def _write_in_order(workspace, texts, scope="LOCAL"):
    """Create memories oldest first, one second apart, so created_at order is unambiguous."""
    start = timezone.now() - timedelta(hours=1)
    rows = []
    for n, text in enumerate(texts):
        memory = AgentMemory.objects.create(workspace=workspace, content=text, scope=scope)
        AgentMemory.objects.filter(pk=memory.pk).update(created_at=start + timedelta(seconds=n))
        rows.append(memory)
    return rows


def test_without_a_query_newest_come_first(tree):
    _write_in_order(tree["A"], ["first", "second", "third"])
    assert [i["content"] for i in selectors.agent_memory_search(workspace_id=tree["A"].id)] == ["third", "second", "first"]


def test_full_text_ranking_puts_the_better_match_first(tree):
    a = tree["A"]
    # Oldest first: newest-first ordering would give the opposite of the ranking asserted below.
    _write_in_order(a, [
        "Database migration runbook: every database migration runs in a migration window; "
        "a failed database migration is rolled back.",
        "Postgres upgrade notes. The database migration ran overnight.",
        "Lunch is at noon; the database team meets on Fridays.",  # only one of the two terms
        "Nothing relevant here at all.",
    ])
    found = [i["content"] for i in selectors.agent_memory_search(workspace_id=a.id, q="database migrations")]
    assert len(found) == 2  # plainto_tsquery ANDs the terms; "migrations" stems to "migration"
    assert found[0].startswith("Database migration runbook")
    assert found[1].startswith("Postgres upgrade notes")


def test_equal_ranks_fall_back_to_newest_first(tree):
    _write_in_order(tree["A"], ["the pipeline broke", "the pipeline broke"])
    older, newer = AgentMemory.objects.filter(workspace=tree["A"]).order_by("created_at")
    found = selectors.agent_memory_search(workspace_id=tree["A"].id, q="pipelines")
    assert [i["id"] for i in found] == [str(newer.id), str(older.id)]


def test_full_text_uses_english_stemming_and_ignores_case(tree):
    _write_in_order(tree["A"], ["The deployment pipelines were failing", "Lunch is at noon"])
    assert contents(tree["A"], q="PIPELINE fails") == {"The deployment pipelines were failing"}


def test_a_one_character_query_is_a_case_insensitive_substring_match(tree):
    _write_in_order(tree["A"], ["Queue depth", "queue drained", "nothing"])
    found = [i["content"] for i in selectors.agent_memory_search(workspace_id=tree["A"].id, q="Q")]
    assert found == ["queue drained", "Queue depth"]
    assert contents(tree["A"], q="%") == set()  # a literal character, not a wildcard


def test_search_combines_scope_namespace_and_query(memories):
    a = memories["A"]
    AgentMemory.objects.create(workspace=memories["B"], content="team deploy notes", scope="TEAM", namespace="ops")
    AgentMemory.objects.create(workspace=memories["B"], content="team deploy notes", scope="TEAM")
    AgentMemory.objects.create(workspace=memories["A1"], content="team deploy notes", scope="TEAM", namespace="ops")
    found = selectors.agent_memory_search(workspace_id=a.id, scope="TEAM", namespace="ops", q="deploy")
    assert [(i["workspace_id"], i["namespace"]) for i in found] == [(str(memories["B"].id), "ops")]


@pytest.mark.parametrize(
    ("requested", "used"), [(1, 1), (3, 3), (49, 49), (50, 50), (51, 50), (500, 50), (0, 50), (-1, 50), (None, 50)]
)
def test_limit_1_to_49_is_honoured_anything_else_is_50(requested, used):
    assert selectors.search_limit(requested) == used


def test_limit_caps_the_result(tree):
    _write_in_order(tree["A"], [f"fact {n}" for n in range(55)])
    assert len(selectors.agent_memory_search(workspace_id=tree["A"].id, limit=3)) == 3
    assert len(selectors.agent_memory_search(workspace_id=tree["A"].id, limit=100)) == 50


# --- key/value memory ----------------------------------------------------------------------------

def test_kv_list_is_ordered_by_key_and_hides_expired_entries(tree):
    a = tree["A"]
    now = timezone.now()
    WorkspaceMemory.objects.create(workspace=a, key="b", value={"n": 2})
    WorkspaceMemory.objects.create(workspace=a, key="a", value=[1], expires_at=now + timedelta(minutes=5), version=3)
    WorkspaceMemory.objects.create(workspace=a, key="c", value="gone", expires_at=now - timedelta(seconds=1))
    WorkspaceMemory.objects.create(workspace=tree["B"], key="other", value=1)
    items = selectors.workspace_memory_list(workspace_id=a.id)
    assert [(i["key"], i["value"], i["version"]) for i in items] == [("a", [1], 3), ("b", {"n": 2}, 1)]
    assert list(items[0]) == ["key", "value", "version", "expires_at", "updated_at"]
    assert list(items[1]) == ["key", "value", "version", "updated_at"]  # expires_at only when set


def test_kv_get_treats_an_expired_entry_as_missing(tree):
    a = tree["A"]
    WorkspaceMemory.objects.create(workspace=a, key="live", value=True)
    WorkspaceMemory.objects.create(workspace=a, key="old", value=True, expires_at=timezone.now() - timedelta(seconds=1))
    assert selectors.workspace_memory_get(workspace_id=a.id, key="live")["value"] is True
    assert selectors.workspace_memory_get(workspace_id=a.id, key="old") is None
    assert selectors.workspace_memory_get(workspace_id=a.id, key="never") is None
    assert selectors.workspace_memory_get(workspace_id="not-a-uuid", key="live") is None
    assert selectors.workspace_memory_list(workspace_id="not-a-uuid") == []
