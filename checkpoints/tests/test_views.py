"""``/workspaces/:id/checkpoints`` on the wire: upsert, latest, list, delete, bounds and auth."""

import threading
import uuid

import pytest
from django.db import connection

from checkpoints import services
from checkpoints.models import WorkflowCheckpoint
from registry.tokens import token_mint
from workspaces.models import Workspace

@pytest.fixture
def dev(db):
    workspace = Workspace.objects.create(name="Dev")
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


def _step(api, ws, workflow_id="wf-1", step_name="fetch", step_index=0, payload=None, method="POST"):
    body = {"workflow_id": workflow_id, "step_name": step_name, "step_index": step_index}
    if payload is not None:
        body["payload"] = payload
    return api(method, f"/workspaces/{ws.id}/checkpoints", body, token=ws.token)


@pytest.mark.django_db
def test_upsert_creates_then_replaces_a_step(api, dev):
    created = _step(api, dev, payload={"rows": 3})
    assert created.status_code == 201
    row = created.json()
    assert {k: row[k] for k in ("workspace_id", "workflow_id", "step_name", "step_index", "payload")} == {
        "workspace_id": str(dev.id), "workflow_id": "wf-1", "step_name": "fetch", "step_index": 0,
        "payload": {"rows": 3}}
    replaced = _step(api, dev, step_index=2, payload=["done"], method="PUT")
    assert replaced.status_code == 200
    assert (replaced.json()["id"], replaced.json()["step_index"], replaced.json()["payload"]) == (row["id"], 2, ["done"])
    assert WorkflowCheckpoint.objects.count() == 1


@pytest.mark.django_db
def test_list_is_the_workflows_steps_in_order_and_latest_is_the_furthest(api, dev):
    _step(api, dev, step_name="plan", step_index=0)
    _step(api, dev, step_name="build", step_index=2)
    _step(api, dev, step_name="test", step_index=1)
    _step(api, dev, workflow_id="wf-2", step_name="other", step_index=0)
    steps = api("GET", f"/workspaces/{dev.id}/checkpoints/wf-1", token=dev.token).json()
    assert [s["step_name"] for s in steps] == ["plan", "test", "build"]
    latest = api("GET", f"/workspaces/{dev.id}/checkpoints/latest?workflow_id=wf-1", token=dev.token).json()
    assert latest["step_name"] == "build"
    # without a workflow_id: the step the workspace wrote last
    assert api("GET", f"/workspaces/{dev.id}/checkpoints/latest", token=dev.token).json()["workflow_id"] == "wf-2"
    assert api("GET", f"/workspaces/{dev.id}/checkpoints/unknown", token=dev.token).json() == []


@pytest.mark.django_db
def test_latest_without_checkpoints_is_404(api, dev):
    for query in ("", "?workflow_id=wf-9"):
        response = api("GET", f"/workspaces/{dev.id}/checkpoints/latest{query}", token=dev.token)
        assert (response.status_code, response.json()) == (404, {"error": "no checkpoint found"})


@pytest.mark.django_db
def test_delete_removes_the_whole_workflow_only(api, dev):
    _step(api, dev, step_name="a")
    _step(api, dev, step_name="b", step_index=1)
    _step(api, dev, workflow_id="wf-2", step_name="a")
    response = api("DELETE", f"/workspaces/{dev.id}/checkpoints/wf-1", token=dev.token)
    assert response.json() == {"status": "deleted", "deleted": 2}
    assert api("DELETE", f"/workspaces/{dev.id}/checkpoints/wf-1", token=dev.token).json()["deleted"] == 0
    assert list(WorkflowCheckpoint.objects.values_list("workflow_id", flat=True)) == ["wf-2"]


@pytest.mark.django_db
@pytest.mark.parametrize("body, status, error", [
    ({"step_name": "s"}, 400, 'workflow_id is required: 1-200 characters without / and not "latest"'),
    ({"workflow_id": "latest", "step_name": "s"}, 400,
     'workflow_id is required: 1-200 characters without / and not "latest"'),
    ({"workflow_id": "a/b", "step_name": "s"}, 400,
     'workflow_id is required: 1-200 characters without / and not "latest"'),
    ({"workflow_id": "w" * 201, "step_name": "s"}, 400,
     'workflow_id is required: 1-200 characters without / and not "latest"'),
    ({"workflow_id": 7, "step_name": "s"}, 400, 'workflow_id is required: 1-200 characters without / and not "latest"'),
    ({"workflow_id": "w", "step_name": ""}, 400, "step_name is required: 1-200 characters without /"),
    ({"workflow_id": "w", "step_name": "s", "step_index": -1}, 400, "step_index must be a non-negative integer"),
    ({"workflow_id": "w", "step_name": "s", "step_index": "1"}, 400, "step_index must be a non-negative integer"),
    ({"workflow_id": "w", "step_name": "s", "step_index": True}, 400, "step_index must be a non-negative integer"),
    ({"workflow_id": "w", "step_name": "s", "step_index": 2**31}, 400, "step_index must be a non-negative integer"),
    ({"workflow_id": "w", "step_name": "s", "payload": "x" * (256 * 1024)}, 413,
     "payload too large (max 262144 bytes of JSON)"),
    ([1], 400, "invalid request body"),
    ("{nope", 400, "invalid request body"),
    ('{"workflow_id": "w", "step_name": "s", "payload": "a\\u0000b"}', 400, "invalid request body"),
])
def test_upsert_rejects_bad_input(api, dev, body, status, error):
    response = api("POST", f"/workspaces/{dev.id}/checkpoints", body, token=dev.token)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert WorkflowCheckpoint.objects.count() == 0


@pytest.mark.django_db
def test_a_workspace_holds_a_bounded_number_of_steps(api, dev, monkeypatch):
    monkeypatch.setattr(services, "MAX_CHECKPOINTS", 2)
    assert _step(api, dev, step_name="a").status_code == 201
    assert _step(api, dev, step_name="b").status_code == 201
    response = _step(api, dev, step_name="c")
    assert response.status_code == 409
    assert response.json()["error"].startswith("too many checkpoints")
    assert _step(api, dev, step_name="a", payload={"again": True}).status_code == 200  # replacing is fine


@pytest.mark.django_db
def test_other_workspaces_tokens_and_no_token_are_refused(api, dev):
    _step(api, dev, payload={"secret": "plan"})
    other = Workspace.objects.create(name="Other")
    _, other_token = token_mint(workspace=other)
    for token in (other_token, None):
        base = f"/workspaces/{dev.id}/checkpoints"
        assert api("POST", base, {"workflow_id": "x", "step_name": "y"}, token=token).status_code == 401
        assert api("GET", f"{base}/latest", token=token).status_code == 401
        assert api("GET", f"{base}/wf-1", token=token).status_code == 401
        assert api("DELETE", f"{base}/wf-1", token=token).status_code == 401
    assert WorkflowCheckpoint.objects.count() == 1
    # a workspace's own checkpoints are its own: the other one sees none of dev's through its id
    assert api("GET", f"/workspaces/{other.id}/checkpoints/wf-1", token=other_token).json() == []


@pytest.mark.django_db
def test_unknown_workspace_is_404_for_the_admin(api):
    for method, suffix in (("GET", "/latest"), ("GET", "/wf"), ("DELETE", "/wf"), ("POST", "")):
        body = {"workflow_id": "w", "step_name": "s"} if method == "POST" else None
        response = api(method, f"/workspaces/{uuid.uuid4()}/checkpoints{suffix}", body)
        assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})


@pytest.mark.django_db
def test_removing_the_workspace_removes_its_checkpoints(api, dev):
    _step(api, dev)
    dev.delete()
    assert WorkflowCheckpoint.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_new_step_make_one_row(dev):
    barrier = threading.Barrier(4)
    results, errors = [], []

    def write(n):
        try:
            barrier.wait()
            results.append(services.checkpoint_upsert(workspace_id=dev.id, workflow_id="wf", step_name="s",
                                                      step_index=n, payload={"n": n})[1])
        except Exception as exc:  # noqa: BLE001 — the assertion below reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert WorkflowCheckpoint.objects.count() == 1
