"""``/workspaces/:id/budget`` and ``/workspaces/:id/metrics`` on the wire: auth, bodies, errors."""

import datetime
import uuid

import pytest
from django.utils import timezone

from activity.models import StructureEvent
from metering.models import WorkspaceTokenUsage
from molecule_site.tests.api_client import ADMIN_TOKEN
from registry.tokens import token_mint
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secure")]


@pytest.fixture
def pm():
    workspace = Workspace.objects.create(name="PM", budget_limit=1000, monthly_spend=250)
    _, workspace.token = token_mint(workspace=workspace)
    return workspace


def test_budget_get_for_the_workspace_and_the_admin(api, pm):
    for token in (pm.token, ADMIN_TOKEN):
        response = api("GET", f"/workspaces/{pm.id}/budget", token=token)
        assert response.content == b'{"budget_limit":1000,"monthly_spend":250,"budget_remaining":750}'


def test_budget_without_limit_has_no_remaining(api, pm):
    Workspace.objects.filter(pk=pm.pk).update(budget_limit=None)
    assert api("GET", f"/workspaces/{pm.id}/budget").json() == {"budget_limit": None, "monthly_spend": 250,
                                                                "budget_remaining": None}


def test_budget_refuses_other_workspaces_tokens_and_no_token(api, pm):
    other = Workspace.objects.create(name="Other")
    _, other_token = token_mint(workspace=other)
    assert api("GET", f"/workspaces/{pm.id}/budget", token=other_token).status_code == 401
    assert api("GET", f"/workspaces/{pm.id}/budget", token=None).status_code == 401


def test_budget_patch_is_admin_only(api, pm):
    response = api("PATCH", f"/workspaces/{pm.id}/budget", {"budget_limit": 1}, token=pm.token)
    assert response.status_code == 401
    pm.refresh_from_db()
    assert pm.budget_limit == 1000


def test_budget_patch_sets_and_clears_the_limit_with_an_event(api, pm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api("PATCH", f"/workspaces/{pm.id}/budget", {"budget_limit": 300})
    assert response.json() == {"budget_limit": 300, "monthly_spend": 250, "budget_remaining": 50}
    assert StructureEvent.objects.filter(workspace_id=pm.id, event_type="BUDGET_UPDATED").count() == 1
    assert api("PATCH", f"/workspaces/{pm.id}/budget", {"budget_limit": None}).json()["budget_limit"] is None
    pm.refresh_from_db()
    assert pm.budget_limit is None


@pytest.mark.parametrize("body", [{"budget_limit": -1}, {"budget_limit": "10"}, {"budget_limit": 1.5},
                                  {"budget_limit": True}, {}, [], "not json", {"budget_limit": 2**63}])
def test_budget_patch_rejects_bad_input_and_keeps_the_limit(api, pm, body):
    response = api("PATCH", f"/workspaces/{pm.id}/budget", body)
    assert response.status_code == 400
    assert response.json()["error"] in ("budget_limit must be a non-negative integer or null", "invalid request body")
    pm.refresh_from_db()
    assert pm.budget_limit == 1000


def test_unknown_workspace_is_404(api):
    for path in ("budget", "metrics"):
        response = api("GET", f"/workspaces/{uuid.uuid4()}/{path}")
        assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})


def test_metrics_sums_this_months_usage_per_model(api, pm):
    today = timezone.now().astimezone(datetime.UTC).date()
    WorkspaceTokenUsage.objects.create(workspace=pm, model="gpt-4o", day=today, input_tokens=100, output_tokens=20,
                                       call_count=2, cost_cents=0.045)
    WorkspaceTokenUsage.objects.create(workspace=pm, model="claude-sonnet-4", day=today, input_tokens=10,
                                       output_tokens=5, call_count=1, cost_cents=0.0105)
    last_year = today.replace(year=today.year - 1)
    WorkspaceTokenUsage.objects.create(workspace=pm, model="gpt-4o", day=last_year, input_tokens=10**6,
                                       output_tokens=10**6, call_count=9, cost_cents=1250)
    body = api("GET", f"/workspaces/{pm.id}/metrics", token=pm.token).json()
    assert (body["input_tokens"], body["output_tokens"], body["total_tokens"], body["call_count"]) == (110, 25, 135, 3)
    assert [m["model"] for m in body["by_model"]] == ["claude-sonnet-4", "gpt-4o"]
    assert body["estimated_cost_usd"] == pytest.approx(0.000555)
    assert body["daily"] == [{"date": today.isoformat(), "input_tokens": 110, "output_tokens": 25, "cost_cents": 0.0555}]
    assert (body["monthly_spend"], body["budget_limit"], body["workspace_id"]) == (250, 1000, str(pm.id))


def test_odd_methods_are_404(api, pm):
    assert api("DELETE", f"/workspaces/{pm.id}/budget").status_code == 404
    assert api("POST", f"/workspaces/{pm.id}/metrics", {}).status_code == 404
    assert api("HEAD", f"/workspaces/{pm.id}/metrics").status_code == 200
