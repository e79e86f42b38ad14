"""``/instructions`` (admin CRUD) and ``/workspaces/:id/instructions/resolve`` on the wire."""

import uuid

import pytest

from instructions.models import MAX_CONTENT, PlatformInstruction
from registry.tokens import token_mint
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secure")]


@pytest.fixture
def dev():
    workspace = Workspace.objects.create(name="Dev")
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


@pytest.fixture
def qa():
    workspace = Workspace.objects.create(name="QA")
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


def _create(api, **fields):
    body = {"title": "Rule", "content": "Be kind.", **fields}
    response = api("POST", "/instructions", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_a_global_instruction_and_read_it_back(api):
    row = _create(api, title="Coding rules", content="- write tests\n- no secrets in logs", priority=5)
    assert {k: row[k] for k in ("scope", "workspace_id", "title", "content", "priority", "enabled")} == {
        "scope": "global", "workspace_id": None, "title": "Coding rules",
        "content": "- write tests\n- no secrets in logs", "priority": 5, "enabled": True}
    assert api("GET", f"/instructions/{row['id']}").json() == row
    assert api("GET", "/instructions").json() == [row]


def test_create_a_workspace_instruction(api, dev):
    row = _create(api, scope="workspace", workspace_id=str(dev.id))
    assert (row["scope"], row["workspace_id"]) == ("workspace", str(dev.id))
    assert [r["id"] for r in api("GET", f"/instructions?workspace_id={dev.id}").json()] == [row["id"]]
    assert api("GET", "/instructions?scope=global").json() == []


@pytest.mark.parametrize("body, error", [
    ({"scope": "team", "title": "t", "content": "c"}, "team scope is reserved and not supported yet"),
    ({"scope": "org", "title": "t", "content": "c"}, "scope must be global or workspace"),
    ({"scope": "workspace", "title": "t", "content": "c"}, "workspace_id is required for workspace scope"),
    ({"scope": "workspace", "workspace_id": str(uuid.uuid4()), "title": "t", "content": "c"}, "workspace not found"),
    ({"scope": "workspace", "workspace_id": "nope", "title": "t", "content": "c"},
     "workspace_id must be a workspace UUID or null"),
    ({"title": "t", "content": "c", "workspace_id": "WS"}, "workspace_id must be a workspace UUID or null"),
    ({"content": "c"}, "title is required"),
    ({"title": "t"}, "content is required"),
    ({"title": "t", "content": "   "}, "content is required: Markdown of at most 8192 characters"),
    ({"title": "a\nb", "content": "c"}, "title is required: one line of at most 200 characters"),
    ({"title": "x" * 201, "content": "c"}, "title is required: one line of at most 200 characters"),
    ({"title": "t", "content": "x" * (MAX_CONTENT + 1)}, "content is required: Markdown of at most 8192 characters"),
    ({"title": 5, "content": "c"}, "title must be a string"),
    ({"title": "t", "content": "c", "priority": "high"}, "priority must be an integer"),
    ({"title": "t", "content": "c", "priority": 1.5}, "priority must be an integer"),
    ({"title": "t", "content": "c", "priority": 2**31}, "priority must be an integer"),
    ({"title": "t", "content": "c", "enabled": "yes"}, "enabled must be true or false"),
    ([], "invalid request body"),
    ("{not json", "invalid request body"),
])
def test_create_rejects_bad_input_with_a_clear_400(api, body, error):
    response = api("POST", "/instructions", body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert PlatformInstruction.objects.count() == 0


def test_global_scope_with_a_workspace_is_refused(api, dev):
    response = api("POST", "/instructions", {"title": "t", "content": "c", "workspace_id": str(dev.id)})
    assert response.json() == {"error": "a global instruction has no workspace_id"}


def test_the_content_bound_holds_in_the_database_too(dev):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PlatformInstruction.objects.create(title="t", content="x" * (MAX_CONTENT + 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        PlatformInstruction.objects.create(title="t", content="c", scope="workspace")


def test_put_and_patch_change_only_the_fields_they_carry(api, dev):
    row = _create(api, priority=1)
    updated = api("PUT", f"/instructions/{row['id']}", {"content": "Be brief.", "enabled": False}).json()
    assert (updated["title"], updated["content"], updated["priority"], updated["enabled"]) == \
        ("Rule", "Be brief.", 1, False)
    moved = api("PATCH", f"/instructions/{row['id']}", {"scope": "workspace", "workspace_id": str(dev.id)}).json()
    assert (moved["scope"], moved["workspace_id"]) == ("workspace", str(dev.id))
    back = api("PUT", f"/instructions/{row['id']}", {"scope": "global"}).json()
    assert (back["scope"], back["workspace_id"]) == ("global", None)


def test_put_refuses_bad_input_and_keeps_the_row(api):
    row = _create(api)
    for body in ({"scope": "team"}, {"title": ""}, {"scope": "workspace"}, {"priority": None}):
        assert api("PUT", f"/instructions/{row['id']}", body).status_code == 400
    assert api("GET", f"/instructions/{row['id']}").json() == row


def test_delete_and_unknown_ids(api):
    row = _create(api)
    assert api("DELETE", f"/instructions/{row['id']}").json() == {"status": "deleted"}
    for method in ("GET", "PUT", "DELETE"):
        for instruction_id in (row["id"], "not-a-uuid"):
            response = api(method, f"/instructions/{instruction_id}", {} if method == "PUT" else None)
            assert (response.status_code, response.json()) == (404, {"error": "instruction not found"})


def test_workspace_tokens_cannot_read_or_write_instructions(api, dev):
    row = _create(api)
    for token in (dev.token, None, "wrong"):
        assert api("GET", "/instructions", token=token).status_code == 401
        assert api("POST", "/instructions", {"title": "mine", "content": "obey me"}, token=token).status_code == 401
        assert api("PUT", f"/instructions/{row['id']}", {"content": "pwned"}, token=token).status_code == 401
        assert api("DELETE", f"/instructions/{row['id']}", token=token).status_code == 401
    assert PlatformInstruction.objects.get().content == "Be kind."


def test_resolve_is_global_rules_then_the_workspaces_by_priority(api, dev, qa):
    _create(api, title="Low global", content="g-low", priority=0)
    _create(api, title="High global", content="g-high\n", priority=10)
    _create(api, title="Disabled", content="never", priority=99, enabled=False)
    _create(api, title="Dev rule", content="dev-only", scope="workspace", workspace_id=str(dev.id), priority=50)
    _create(api, title="QA rule", content="qa-only", scope="workspace", workspace_id=str(qa.id))
    response = api("GET", f"/workspaces/{dev.id}/instructions/resolve", token=dev.token)
    assert response.status_code == 200
    assert response.json() == {
        "workspace_id": str(dev.id),
        "instructions": "## High global\n\ng-high\n\n## Low global\n\ng-low\n\n## Dev rule\n\ndev-only",
    }
    assert "qa-only" in api("GET", f"/workspaces/{qa.id}/instructions/resolve", token=qa.token).json()["instructions"]


def test_resolve_without_rules_is_empty(api, dev):
    assert api("GET", f"/workspaces/{dev.id}/instructions/resolve", token=dev.token).json() == {
        "workspace_id": str(dev.id), "instructions": ""}


def test_resolve_refuses_another_workspaces_token_and_no_token(api, dev, qa):
    _create(api, title="Dev rule", content="dev secret plan", scope="workspace", workspace_id=str(dev.id))
    for token in (qa.token, None):
        response = api("GET", f"/workspaces/{dev.id}/instructions/resolve", token=token)
        assert response.status_code == 401
        assert b"dev secret plan" not in response.content


def test_resolve_of_an_unknown_workspace_is_404(api):
    response = api("GET", f"/workspaces/{uuid.uuid4()}/instructions/resolve")
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})


def test_removing_a_workspace_removes_its_instructions(api, dev):
    _create(api, scope="workspace", workspace_id=str(dev.id))
    dev.delete()
    assert PlatformInstruction.objects.count() == 0
