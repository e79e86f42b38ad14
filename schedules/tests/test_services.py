"""``schedules.services``: the schedules templates declare (config.yaml and org.yaml), and a
removed workspace's schedules stopping."""

from __future__ import annotations

import json

import pytest

from molecule_site.errors import ApiError
from schedules import services
from schedules.inputs import template_schedules
from schedules.models import WorkspaceSchedule
from workspaces.models import Workspace
from workspaces.services import NewWorkspace, workspace_create, workspace_delete

pytestmark = pytest.mark.django_db

ADMIN = "schedules-services-admin"
CONFIG = """
name: Scheduled
runtime: echo
schedules:
  - name: standup
    cron: "0 9 * * 1-5"
    timezone: Europe/Paris
    prompt: Post the plan for today.
  - {name: weekly-report, cron_expr: "0 17 * * fri", prompt: Write the weekly report., enabled: false}
"""


@pytest.fixture
def configs(settings, tmp_path):
    settings.CONFIGS_DIR = tmp_path / "configs"
    settings.MOLECULE_HOME = tmp_path / "home"

    def write(name: str, text: str):
        (settings.CONFIGS_DIR / name).mkdir(parents=True)
        (settings.CONFIGS_DIR / name / "config.yaml").write_text(text)

    return write


def create(template: str, name: str = "PM") -> Workspace:
    body = workspace_create(new=NewWorkspace(name=name, template=template, runtime="echo"),
                            platform_url="http://localhost:8080")
    return Workspace.objects.get(pk=body["id"])


def test_a_templates_schedules_are_created_with_source_template(configs):
    configs("scheduled", CONFIG)
    workspace = create("scheduled")
    rows = {row.name: row for row in WorkspaceSchedule.objects.filter(workspace=workspace)}
    assert set(rows) == {"standup", "weekly-report"}
    standup = rows["standup"]
    assert (standup.cron_expr, standup.timezone, standup.source, standup.enabled) == (
        "0 9 * * 1-5", "Europe/Paris", "template", True)
    assert standup.next_fire_at is not None
    assert (rows["weekly-report"].enabled, rows["weekly-report"].next_fire_at, rows["weekly-report"].timezone) == (
        False, None, "UTC")


def test_applying_a_templates_schedules_again_creates_nothing_new(configs):
    configs("scheduled", CONFIG)
    workspace = create("scheduled")
    WorkspaceSchedule.objects.filter(workspace=workspace, name="standup").update(prompt="edited by the operator")
    entries = template_schedules([{"name": "standup", "cron": "* * * * *", "prompt": "new"},
                                           {"name": "new-one", "cron": "* * * * *", "prompt": "p"}])
    created = services.schedules_from_template(workspace_id=workspace.id, entries=entries)
    assert [row.name for row in created] == ["new-one"]
    assert WorkspaceSchedule.objects.get(workspace=workspace, name="standup").prompt == "edited by the operator"


@pytest.mark.parametrize("schedules, error", [
    ("schedules: daily", "schedules must be a list"),
    ("schedules: [nope]", "schedules[0] must be a mapping"),
    ("schedules: [{name: a, cron: '* *', prompt: p}]", "schedules[0]: invalid cron_expr"),
    ("schedules: [{name: a, cron: '* * * * *', prompt: p, timezone: Nowhere}]", "schedules[0]: invalid timezone"),
    ("schedules: [{cron: '* * * * *', prompt: p}]", "schedules[0]: name is required"),
    ("schedules: [{name: a, cron: '* * * * *', prompt: p}, {name: a, cron: '@daily', prompt: q}]",
     "schedules[1]: duplicate schedule name 'a'"),
])
def test_a_template_with_bad_schedules_creates_no_workspace(configs, schedules, error):
    configs("broken", f"name: Broken\nruntime: echo\n{schedules}\n")
    with pytest.raises(ApiError) as raised:
        create("broken")
    assert raised.value.status == 400
    assert raised.value.body["error"].startswith(f"template broken: {error}"), raised.value.body
    assert not Workspace.objects.exists()


def test_removing_a_workspace_disables_its_schedules(configs):
    configs("scheduled", CONFIG)
    workspace = create("scheduled")
    workspace_delete(workspace_id=workspace.id, confirm=True, purge=False)
    assert not WorkspaceSchedule.objects.filter(workspace=workspace, enabled=True).exists()
    assert not WorkspaceSchedule.objects.filter(workspace=workspace, next_fire_at__isnull=False).exists()


def test_purging_a_workspace_deletes_its_schedules(configs):
    configs("scheduled", CONFIG)
    workspace = create("scheduled")
    workspace_delete(workspace_id=workspace.id, confirm=True, purge=True)
    assert not WorkspaceSchedule.objects.exists()


# --- org.yaml ---------------------------------------------------------------------------------------

@pytest.fixture
def orgs(settings, tmp_path, configs):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.ORG_TEMPLATES_DIR = tmp_path / "orgs"

    def write(directory: str, text: str):
        (settings.ORG_TEMPLATES_DIR / directory).mkdir(parents=True)
        (settings.ORG_TEMPLATES_DIR / directory / "org.yaml").write_text(text)

    return write


def import_org(client, django_capture_on_commit_callbacks, directory):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/org/import", json.dumps({"dir": directory}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {ADMIN}")


def test_an_org_imports_its_workspaces_schedules_after_their_templates(
        client, django_capture_on_commit_callbacks, orgs, configs):
    configs("scheduled", CONFIG)
    orgs("team", """
name: Team
workspaces:
  - name: PM
    template: scheduled
    schedules:
      - {name: standup, cron: "@hourly", prompt: the org's standup replaces the template's}
      - {name: triage, cron: "*/30 9-17 * * 1-5", timezone: America/New_York, prompt: Triage new issues.}
    children:
      - {name: Dev, runtime: echo, schedules: [{name: build, cron: "0 2 * * *", prompt: Run the nightly build.}]}
""")
    response = import_org(client, django_capture_on_commit_callbacks, "team")
    assert response.status_code == 201, response.content
    pm = Workspace.objects.get(name="PM")
    rows = {row.name: row for row in WorkspaceSchedule.objects.filter(workspace=pm)}
    assert set(rows) == {"standup", "weekly-report", "triage"}
    # the same name as the template's: the org's per-workspace entry wins, as its role and tier do
    assert (rows["standup"].cron_expr, rows["standup"].prompt, rows["standup"].timezone, rows["standup"].source) == (
        "@hourly", "the org's standup replaces the template's", "UTC", "template")
    assert rows["standup"].next_fire_at is not None and rows["standup"].next_fire_at.minute == 0
    assert (rows["triage"].timezone, rows["triage"].source) == ("America/New_York", "template")
    assert WorkspaceSchedule.objects.get(workspace__name="Dev").name == "build"


def test_an_org_with_a_bad_schedule_is_refused_naming_the_place(client, django_capture_on_commit_callbacks, orgs):
    orgs("bad", """
name: Bad
workspaces:
  - name: PM
    runtime: echo
    children:
      - {name: Dev, runtime: echo, schedules: [{name: x, cron: "0 25 * * *", prompt: p}]}
""")
    response = import_org(client, django_capture_on_commit_callbacks, "bad")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "bad/org.yaml: workspaces[0].children[0].schedules[0]: invalid cron_expr: hour field '25' is invalid (allowed: 0-23)")
    assert not Workspace.objects.exists()


def test_the_shipped_engineering_teams_pm_plans_each_weekday_on_a_schedule(
        client, django_capture_on_commit_callbacks, settings):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.CONFIGS_DIR = settings.BASE_DIR / "workspace-configs-templates"
    settings.ORG_TEMPLATES_DIR = settings.BASE_DIR / "org-templates"
    assert import_org(client, django_capture_on_commit_callbacks, "engineering-team").status_code == 201
    [row] = WorkspaceSchedule.objects.filter(workspace__name="PM")  # its entry replaced the demo-pm template's
    assert (row.name, row.cron_expr, row.source, row.enabled) == ("morning-plan", "0 9 * * 1-5", "template", True)
    assert row.prompt.startswith("/delegate Dev Lead ")
