"""``/workspaces/:id/schedules…`` and ``/admin/schedules/health``: CRUD, bad input, auth, run, history, health."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from activity.models import ActivityLog
from molecule_site.celery import app
from molecule_site.tests.api_client import ADMIN_TOKEN, call
from registry import proxy
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from registry.tokens import token_mint
from schedules.models import ScheduleStatus, WorkspaceSchedule
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

STANDUP = {"name": "standup", "cron_expr": "0 9 * * 1-5", "timezone": "Europe/Paris", "prompt": "Post the plan."}


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _settings(secure, settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    a2a_server.requests.clear()


@pytest.fixture
def pm(a2a_server):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("usage"))
    workspace.token = token_mint(workspace=workspace)[1]
    return workspace


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """The shared ``call`` (headers by name: ``X_Workspace_ID=…``; ``raw``: a body sent as it is),
    its after-commit work run before it answers."""
    def send(method, path, body=None, token=ADMIN_TOKEN, raw=None, **headers):
        environ = {f"HTTP_{key.upper().replace('-', '_')}": value for key, value in headers.items()}
        with django_capture_on_commit_callbacks(execute=True):
            return call(client, method, path, raw if raw is not None else body, token=token, **environ)

    return send


def create(api, workspace, body=None, token=ADMIN_TOKEN):
    return api("POST", f"/workspaces/{workspace.id}/schedules", body or STANDUP, token=token)


# --- create, list, get ---------------------------------------------------------------------------------

def test_create_answers_the_schedule_with_its_next_run_and_lists_it(api, pm):
    response = create(api, pm)
    assert response.status_code == 201, response.content
    item = response.json()
    assert {key: item[key] for key in STANDUP} == STANDUP
    assert (item["enabled"], item["source"], item["status"], item["run_count"]) == (True, "operator", "ok", 0)
    assert (item["last_run_at"], item["last_status"], item["consecutive_empty"]) == (None, None, 0)
    next_run = parse_datetime(item["next_run_at"])
    assert next_run > timezone.now()
    local = next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (9, 0) and local.isoweekday() <= 5

    listing = api("GET", f"/workspaces/{pm.id}/schedules")
    assert listing.status_code == 200 and [s["id"] for s in listing.json()] == [item["id"]]
    one = api("GET", f"/workspaces/{pm.id}/schedules/{item['id']}")
    assert one.json() == item


def test_the_workspaces_own_token_creates_a_runtime_schedule(api, pm):
    response = create(api, pm, token=pm.token)
    assert response.status_code == 201 and response.json()["source"] == "runtime"


def test_defaults_utc_enabled_and_cron_expression_alias(api, pm):
    body = {"name": "tick", "cron_expression": "*/10 * * * *", "prompt": "tick"}
    item = create(api, pm, body).json()
    assert (item["cron_expr"], item["timezone"], item["enabled"]) == ("*/10 * * * *", "UTC", True)


def test_a_disabled_schedule_has_no_next_run(api, pm):
    item = create(api, pm, {**STANDUP, "enabled": False}).json()
    assert (item["enabled"], item["next_run_at"]) == (False, None)
    assert WorkspaceSchedule.objects.get().next_fire_at is None


@pytest.mark.parametrize("body, error", [
    ({**STANDUP, "cron_expr": "61 * * * *"}, "invalid cron_expr: minute field '61' is invalid (allowed: 0-59)"),
    ({**STANDUP, "cron_expr": "every day"}, "invalid cron_expr: cron expression must have 5 fields"),
    ({**STANDUP, "cron_expr": 5}, "cron_expr must be a string"),
    ({**STANDUP, "timezone": "Mars/Olympus"}, "invalid timezone: unknown timezone 'Mars/Olympus'"),
    ({**STANDUP, "timezone": 1}, "timezone must be a string"),
    ({**STANDUP, "name": 7}, "name must be a string"),
    ({**STANDUP, "name": "  "}, "name must not be empty"),
    ({**STANDUP, "name": "x" * 201}, "name is longer than 200 characters"),
    ({**STANDUP, "prompt": "x" * (64 * 1024 + 1)}, "prompt is longer than 65536 characters"),
    ({**STANDUP, "enabled": "yes"}, "enabled must be a boolean"),
    ({"cron_expr": "* * * * *", "prompt": "p"}, "name is required"),
    ({"name": "n", "prompt": "p"}, "cron_expr is required"),
    ({"name": "n", "cron_expr": "* * * * *"}, "prompt is required"),
    ([STANDUP], "invalid request body"),
])
def test_create_refuses_bad_input_with_a_clear_error(api, pm, body, error):
    response = create(api, pm, body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error), response.json()
    assert not WorkspaceSchedule.objects.exists()


def test_malformed_json_is_refused(api, pm):
    response = api("POST", f"/workspaces/{pm.id}/schedules", raw="{nope")
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


def test_a_name_is_unique_per_workspace(api, pm):
    assert create(api, pm).status_code == 201
    response = create(api, pm)
    assert (response.status_code, response.json()) == (409, {"error": "a schedule with this name already exists"})
    other = Workspace.objects.create(name="Other", status=WorkspaceStatus.ONLINE)
    assert create(api, other).status_code == 201


# --- patch, delete ---------------------------------------------------------------------------------------

def test_patch_moves_the_deadline_disables_and_re_enables_clearing_stale(api, pm):
    item = create(api, pm).json()
    path = f"/workspaces/{pm.id}/schedules/{item['id']}"

    changed = api("PATCH", path, {"cron_expr": "30 6 * * *", "timezone": "UTC"}).json()
    run = parse_datetime(changed["next_run_at"])
    assert (run.hour, run.minute) == (6, 30) and changed["cron_expr"] == "30 6 * * *"

    WorkspaceSchedule.objects.filter(pk=item["id"]).update(status=ScheduleStatus.STALE, consecutive_empty=3,
                                                            defer_until=timezone.now())
    off = api("PATCH", path, {"enabled": False}).json()
    assert (off["enabled"], off["next_run_at"], off["deferred_until"], off["status"]) == (False, None, None, "stale")
    on = api("PATCH", path, {"enabled": True}).json()
    assert on["next_run_at"] is not None and (on["status"], on["consecutive_empty"]) == ("ok", 0)


@pytest.mark.parametrize("body, error", [
    ({}, "nothing to update: send one of name, cron_expr, timezone, prompt, enabled"),
    ({"cron_expr": "* * *"}, "invalid cron_expr"),
    ({"timezone": "Nowhere"}, "invalid timezone"),
    ({"enabled": 1}, "enabled must be a boolean"),
    ({"prompt": ""}, "prompt must not be empty"),
    ("text", "invalid request body"),
])
def test_patch_refuses_bad_input_and_changes_nothing(api, pm, body, error):
    item = create(api, pm).json()
    response = api("PATCH", f"/workspaces/{pm.id}/schedules/{item['id']}", body)
    assert response.status_code == 400 and response.json()["error"].startswith(error)
    assert api("GET", f"/workspaces/{pm.id}/schedules/{item['id']}").json() == item


def test_renaming_onto_another_schedules_name_is_a_conflict(api, pm):
    create(api, pm)
    other = create(api, pm, {**STANDUP, "name": "retro"}).json()
    response = api("PATCH", f"/workspaces/{pm.id}/schedules/{other['id']}", {"name": "standup"})
    assert response.status_code == 409


def test_delete_removes_the_schedule(api, pm):
    item = create(api, pm).json()
    path = f"/workspaces/{pm.id}/schedules/{item['id']}"
    assert api("DELETE", path).json() == {"status": "deleted"}
    assert api("GET", path).status_code == 404
    assert api("DELETE", path).status_code == 404


# --- unknown ids and other workspaces ------------------------------------------------------------------

def test_unknown_ids_are_404(api, pm):
    item = create(api, pm).json()
    for path in (f"/workspaces/{uuid.uuid4()}/schedules", f"/workspaces/not-a-uuid/schedules",
                 f"/workspaces/{uuid.uuid4()}/schedules/{item['id']}"):
        response = api("GET", path)
        assert (response.status_code, response.json()) == (404, {"error": "workspace not found"}), path
    for schedule_id in (uuid.uuid4(), "not-a-uuid"):
        for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/run"), ("GET", "/history")):
            response = api(method, f"/workspaces/{pm.id}/schedules/{schedule_id}{suffix}", {"enabled": False})
            assert (response.status_code, response.json()) == (404, {"error": "schedule not found"}), (method, suffix)


def test_a_schedule_is_reached_only_under_its_own_workspace(api, pm):
    item = create(api, pm).json()
    other = Workspace.objects.create(name="Other", status=WorkspaceStatus.ONLINE)
    assert api("GET", f"/workspaces/{other.id}/schedules/{item['id']}").status_code == 404
    assert api("DELETE", f"/workspaces/{other.id}/schedules/{item['id']}").status_code == 404
    assert WorkspaceSchedule.objects.filter(pk=item["id"]).exists()


def test_another_workspaces_token_and_no_token_are_refused_on_every_route(api, pm):
    item = create(api, pm).json()
    other = Workspace.objects.create(name="Other", status=WorkspaceStatus.ONLINE)
    other_token = token_mint(workspace=other)[1]
    routes = [("GET", ""), ("POST", ""), ("GET", f"/{item['id']}"), ("PATCH", f"/{item['id']}"),
              ("DELETE", f"/{item['id']}"), ("POST", f"/{item['id']}/run"), ("GET", f"/{item['id']}/history")]
    for method, suffix in routes:
        path = f"/workspaces/{pm.id}/schedules{suffix}"
        refused = api(method, path, {"enabled": False}, token=other_token)
        assert (refused.status_code, refused.json()) == (401, {"error": "invalid workspace auth token"}), path
        anonymous = api(method, path, {"enabled": False}, token=None)
        assert (anonymous.status_code, anonymous.json()) == (401, {"error": "missing workspace auth token"}), path
    assert WorkspaceSchedule.objects.get().enabled is True


def test_a_removed_workspace_has_no_schedule_routes(api, pm):
    create(api, pm)
    Workspace.objects.filter(pk=pm.pk).update(status=WorkspaceStatus.REMOVED)
    assert api("GET", f"/workspaces/{pm.id}/schedules").status_code == 404


# --- run now, history ------------------------------------------------------------------------------------

def test_run_now_queues_a_run_and_the_history_shows_it(api, pm, a2a_server):
    item = create(api, pm).json()
    app.conf.task_always_eager = True
    try:
        response = api("POST", f"/workspaces/{pm.id}/schedules/{item['id']}/run")
    finally:
        app.conf.task_always_eager = False
    assert (response.status_code, response.json()) == (202, {"status": "queued", "schedule_id": item["id"]})
    assert len(a2a_server.requests) == 1

    history = api("GET", f"/workspaces/{pm.id}/schedules/{item['id']}/history", token=pm.token)
    assert history.status_code == 200
    [run] = history.json()
    assert (run["status"], run["reply_preview"], run["error_detail"]) == ("ok", "ok", None)
    assert run["summary"] == "Schedule 'standup' ran" and run["duration_ms"] >= 0


def test_history_is_newest_first_limited_and_only_this_schedules_runs(api, pm):
    first = create(api, pm).json()
    second = create(api, pm, {**STANDUP, "name": "retro"}).json()
    now = timezone.now()
    for minutes, schedule_id in ((3, first["id"]), (2, second["id"]), (1, first["id"])):
        row = ActivityLog.objects.create(workspace=pm, activity_type="cron_run", method="cron", status="ok",
                                         summary=f"{minutes}", request_body={"schedule_id": schedule_id})
        ActivityLog.objects.filter(pk=row.pk).update(created_at=now - timedelta(minutes=minutes))
    path = f"/workspaces/{pm.id}/schedules/{first['id']}/history"
    assert [run["summary"] for run in api("GET", path).json()] == ["1", "3"]
    assert [run["summary"] for run in api("GET", path + "?limit=1").json()] == ["1"]
    for bad in ("0", "101", "x"):
        response = api("GET", f"{path}?limit={bad}")
        assert (response.status_code, response.json()) == (400, {"error": "limit must be an integer from 1 to 100"})


# --- health ---------------------------------------------------------------------------------------------

@pytest.fixture
def team(pm):
    dev = Workspace.objects.create(name="Dev", parent=pm, status=WorkspaceStatus.ONLINE)
    stranger_root = Workspace.objects.create(name="Ops", status=WorkspaceStatus.ONLINE)
    cousin = Workspace.objects.create(name="SRE", parent=stranger_root, status=WorkspaceStatus.ONLINE)
    return {"dev": (dev, token_mint(workspace=dev)[1]), "cousin": (cousin, token_mint(workspace=cousin)[1])}


def test_a_peer_reads_a_workspaces_schedule_health(api, pm, team):
    create(api, pm)
    WorkspaceSchedule.objects.update(status=ScheduleStatus.STALE, consecutive_empty=3, last_status="stale")
    dev, token = team["dev"]
    response = api("GET", f"/workspaces/{pm.id}/schedules/health", token=token, x_workspace_id=str(dev.id))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["workspace_id"], body["healthy"]) == (str(pm.id), False)
    [item] = body["schedules"]
    assert (item["name"], item["status"], item["healthy"], item["consecutive_empty"]) == ("standup", "stale", False, 3)


def test_schedule_health_refuses_strangers_and_bad_callers(api, pm, team):
    path = f"/workspaces/{pm.id}/schedules/health"
    cousin, cousin_token = team["cousin"]
    dev, _ = team["dev"]
    denied = api("GET", path, token=cousin_token, x_workspace_id=str(cousin.id))
    assert (denied.status_code, denied.json()["error"]) == (
        403, "access denied: workspaces cannot communicate per hierarchy rules")
    assert api("GET", path, token=cousin_token, x_workspace_id=str(dev.id)).json() == {
        "error": "invalid workspace auth token"}
    assert api("GET", path, token=None, x_workspace_id=str(dev.id)).status_code == 401
    no_header = api("GET", path, token=cousin_token)
    assert (no_header.status_code, no_header.json()) == (400, {"error": "X-Workspace-ID header is required"})
    assert api("GET", path).status_code == 200  # the operator
    assert api("GET", f"/workspaces/{uuid.uuid4()}/schedules/health").status_code == 404


def test_admin_schedule_health_counts_every_schedule_unhealthy_first(api, pm, team):
    create(api, pm)
    create(api, pm, {**STANDUP, "name": "retro"})
    WorkspaceSchedule.objects.filter(name="retro").update(last_status="error", last_error="boom",
                                                          status=ScheduleStatus.ERROR)
    response = api("GET", "/admin/schedules/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["enabled"], body["unhealthy"], body["stale"]) == (2, 2, 1, 0)
    assert [item["name"] for item in body["schedules"]] == ["retro", "standup"]
    assert body["schedules"][0]["workspace_name"] == "PM"
    refused = api("GET", "/admin/schedules/health", token=pm.token)
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid admin auth token"})
    assert api("GET", "/admin/schedules/health", token=None).status_code == 401
