"""Org templates and import (spec §19): listing, the whole tree through the create service,
``!include`` and its limits, validation before anything is created, required env, auth."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from activity.models import ActivityLog, StructureEvent
from memory.models import AgentMemory
from molecule_site.tests.backends import use_backend
from registry.tokens import token_mint
from secrets_app.crypto import decrypt, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces import org_services, provisioning
from workspaces.models import CanvasLayout, Workspace
from workspaces.provisioners.base import Provisioner

pytestmark = pytest.mark.django_db

ADMIN = "org-templates-admin-token"
BASE = Path(django_settings.BASE_DIR)
SHIPPED_ORGS = BASE / "org-templates"
UNAVAILABLE = "Docker not available — workspace containers require a Docker daemon or external provisioning."


@pytest.fixture(autouse=True)
def dirs(settings, tmp_path):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.MOLECULE_HOME = tmp_path / "home"
    settings.CONFIGS_DIR = BASE / "workspace-configs-templates"
    settings.ORG_TEMPLATES_DIR = SHIPPED_ORGS


@pytest.fixture
def orgs(settings, tmp_path):
    """An empty ORG_TEMPLATES_DIR; ``orgs("dir", {"org.yaml": text, …})`` writes a template."""
    base = tmp_path / "orgs"
    base.mkdir()
    settings.ORG_TEMPLATES_DIR = base

    def write(directory: str, files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = base / directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return base / directory

    write.base = base
    return write


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """Calls as the operator's scripts do (admin bearer), running on-commit work as a commit would."""

    def call(method, path, body=None, token=ADMIN):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method.lower())(path, **kwargs)

    return call


def import_org(api, **body):
    return api("POST", "/org/import", body)


def assert_nothing_created():
    assert not Workspace.objects.exists()
    assert not AgentMemory.objects.exists()
    assert not StructureEvent.objects.exists()


SMALL_ORG = """
name: Small
workspaces:
  - name: Lead
    runtime: echo
    children: [{name: Member, runtime: echo}]
"""


# --- GET /org/templates ----------------------------------------------------------------------------

def test_list_shows_both_shipped_templates_with_counts_and_env(api):
    response = api("GET", "/org/templates")
    assert response.status_code == 200, response.content
    assert response.json() == [
        {"dir": "engineering-team", "name": "Engineering Team",
         "description": "A PM hands work to a Dev Lead, who splits it between Backend and QA.",
         "workspaces": 4, "required_env": [], "recommended_env": ["OPENAI_API_KEY"]},
        {"dir": "research-desk", "name": "Research Desk",
         "description": "A Research Lead assigns questions to an Analyst and has a Fact Checker verify the answers.",
         "workspaces": 3, "required_env": [], "recommended_env": []},
    ]


def test_list_leaves_out_invalid_hidden_and_org_less_directories(api, orgs):
    orgs("good", {"org.yaml": SMALL_ORG.replace("Small", "Good")})
    orgs("broken", {"org.yaml": "name: Broken\nworkspaces: [{tier: 9}]\n"})
    orgs(".hidden", {"org.yaml": SMALL_ORG})
    orgs("no-org-file", {"README.md": "nothing here"})
    orgs("two..dots", {"org.yaml": SMALL_ORG})  # a name no import could give
    assert [item["dir"] for item in api("GET", "/org/templates").json()] == ["good"]


def test_list_is_empty_without_the_directory(api, settings, tmp_path):
    settings.ORG_TEMPLATES_DIR = tmp_path / "missing"
    assert api("GET", "/org/templates").json() == []


# --- POST /org/import: the tree ------------------------------------------------------------------

def test_import_builds_the_engineering_team_with_parents_tiers_roles_memories_and_events(api):
    response = import_org(api, dir="engineering-team")
    assert response.status_code == 201, response.content
    body = response.json()
    rows = {w.name: w for w in Workspace.objects.all()}
    pm, lead, backend, qa = rows["PM"], rows["Dev Lead"], rows["Backend"], rows["QA"]
    assert body == {"org": "Engineering Team", "count": 4, "workspaces": [
        {"id": str(pm.id), "name": "PM", "parent_id": None},
        {"id": str(lead.id), "name": "Dev Lead", "parent_id": str(pm.id)},
        {"id": str(backend.id), "name": "Backend", "parent_id": str(lead.id)},
        {"id": str(qa.id), "name": "QA", "parent_id": str(lead.id)},
    ]}
    assert (pm.parent_id, lead.parent_id, backend.parent_id, qa.parent_id) == (None, pm.id, lead.id, lead.id)
    assert [(w.tier, w.runtime) for w in (pm, lead, backend, qa)] == [(3, "echo"), (2, "echo"), (2, "echo"), (2, "echo")]
    assert pm.role == "Product manager who turns requests into scoped tasks for the Dev Lead"
    assert qa.role == "Writes and runs the test plan for every change before release"
    assert {w.workspace_id for w in CanvasLayout.objects.all()} == set(rows[n].id for n in rows)
    # made exactly as POST /workspaces makes one: the `none` backend fails each row with its event
    assert {w.status for w in rows.values()} == {"failed"}
    assert {w.last_sample_error for w in rows.values()} == {UNAVAILABLE}
    for workspace in rows.values():
        assert list(StructureEvent.objects.filter(workspace_id=workspace.id).order_by("created_at")
                    .values_list("event_type", "payload")) == [
            ("WORKSPACE_PROVISIONING", {"name": workspace.name, "tier": workspace.tier, "runtime": "echo"}),
            ("WORKSPACE_PROVISION_FAILED", {"error": "Docker not available on this platform instance"}),
        ]
    memories = sorted(AgentMemory.objects.values_list("workspace__name", "scope", "content", "namespace"))
    assert memories == sorted([
        ("PM", "GLOBAL", "Every change ships with tests and a changelog entry.", f"workspace:{pm.id}"),
        ("PM", "TEAM", "The team releases on Fridays; QA signs off before every release.", f"workspace:{pm.id}"),
        ("Dev Lead", "LOCAL", "Backend owns the API and the database; QA owns the test plan.", f"workspace:{lead.id}"),
        ("Backend", "LOCAL", "Database changes go in as migrations that can be rolled back.", f"workspace:{backend.id}"),
        ("QA", "LOCAL", "A release needs the full regression suite green.", f"workspace:{qa.id}"),
    ])
    # GLOBAL memories are audited like any other GLOBAL write
    assert ActivityLog.objects.filter(workspace_id=pm.id, activity_type="memory_write_global").count() == 1


def test_the_research_desk_imports_its_children_from_an_included_list(api):
    response = import_org(api, dir="research-desk")
    assert response.status_code == 201, response.content
    assert [(w["name"], w["parent_id"] is None) for w in response.json()["workspaces"]] == [
        ("Research Lead", True), ("Analyst", False), ("Fact Checker", False),
    ]
    lead = Workspace.objects.get(name="Research Lead")
    assert set(Workspace.objects.filter(parent=lead).values_list("name", "tier")) == {("Analyst", 2), ("Fact Checker", 1)}
    assert AgentMemory.objects.filter(workspace=lead, scope="TEAM").count() == 1


class AvailableProvisioner(Provisioner):
    """A backend that can run workspaces; starting them is the Celery task's business."""

    name = "available"
    available = True

    def start(self, workspace, *, launch):
        raise AssertionError("the import only queues provisioning")

    def stop(self, workspace):
        return None



def test_import_provisions_every_workspace_on_commit(api, monkeypatch):
    use_backend(monkeypatch, AvailableProvisioner())
    queued = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, restart=False, **_options: queued.append(workspace_id))
    body = import_org(api, dir="research-desk").json()
    assert queued == [w["id"] for w in body["workspaces"]]
    assert set(Workspace.objects.values_list("status", flat=True)) == {"provisioning"}


def test_memories_are_redacted_and_a_model_becomes_the_model_secret(api):
    org = {"name": "Inline", "defaults": {"runtime": "echo", "model": "openai:gpt-4.1-mini"}, "workspaces": [
        {"name": "Solo", "initial_memories": [{"content": "the key is sk-live-0123456789abcdefghijklmnop"}]},
    ]}
    response = import_org(api, template=org)
    assert response.status_code == 201, response.content
    solo = Workspace.objects.get(name="Solo")
    assert "sk-live-0123456789abcdefghijklmnop" not in AgentMemory.objects.get(workspace=solo).content
    secret = WorkspaceSecret.objects.get(workspace=solo, key="MODEL_PROVIDER")
    assert decrypt(secret.encrypted_value, secret.encryption_version) == "openai:gpt-4.1-mini"


def test_a_failure_while_creating_rolls_the_whole_tree_back(api, monkeypatch):
    created = []
    real_create = org_services.workspace_create

    def create_then_fail(**kwargs):
        if created:
            raise RuntimeError("database went away")
        created.append(real_create(**kwargs))
        return created[-1]

    monkeypatch.setattr(org_services, "workspace_create", create_then_fail)
    with pytest.raises(RuntimeError):
        org_services.org_import(directory="engineering-team", platform_url="http://localhost")
    assert_nothing_created()


# --- initial_prompt: the template's config.yaml key, per workspace ---------------------------------

def own_config(workspace: Workspace) -> dict | None:
    """The workspace's own config.yaml (None while it still falls back to its template)."""
    path = Path(django_settings.MOLECULE_HOME) / "workspaces" / str(workspace.id) / "configs" / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def test_the_shipped_teams_pms_get_an_initial_prompt_naming_their_own_team(api):
    assert import_org(api, dir="engineering-team").status_code == 201
    assert import_org(api, dir="research-desk").status_code == 201
    template = yaml.safe_load((BASE / "workspace-configs-templates/demo-pm/config.yaml").read_text())
    pm, lead = Workspace.objects.get(name="PM"), Workspace.objects.get(name="Research Lead")
    for workspace, prompt in ((pm, "/delegate Dev Lead "), (lead, "/delegate Analyst ")):
        config = own_config(workspace)
        assert config["initial_prompt"].startswith(prompt), config
        assert {k: v for k, v in config.items() if k != "initial_prompt"} == {
            k: v for k, v in template.items() if k != "initial_prompt"}  # the rest is the template's
        assert (BASE / "workspace-configs-templates/demo-pm/team-brief.md").read_text() == (
            Path(django_settings.MOLECULE_HOME) / "workspaces" / str(workspace.id) / "configs" / "team-brief.md").read_text()
    assert own_config(Workspace.objects.get(name="Dev Lead")) is None  # no key: the template as it is
    assert template["initial_prompt"].startswith("/delegate Demo Researcher ")  # the template is untouched


def test_an_empty_initial_prompt_turns_the_templates_off_and_a_workspace_without_template_gets_a_config(api, orgs):
    orgs("quiet", {"org.yaml": """
name: Quiet
workspaces:
  - name: Lead
    template: demo-pm
    initial_prompt: ""
    children:
      - {name: Member, runtime: echo, tier: 1, initial_prompt: "  /remember started  "}
"""})
    assert import_org(api, dir="quiet").status_code == 201
    lead = own_config(Workspace.objects.get(name="Lead"))
    assert lead["initial_prompt"] == "" and lead["name"] == "Demo PM" and lead["runtime"] == "echo"
    member = own_config(Workspace.objects.get(name="Member"))
    assert (member["name"], member["runtime"], member["tier"], member["initial_prompt"]) == (
        "Member", "echo", 1, "/remember started")


@pytest.mark.parametrize("value, error", [
    ("[a, b]", "bad/org.yaml: workspaces[0].initial_prompt: must be a string"),
    ("7", "bad/org.yaml: workspaces[0].initial_prompt: must be a string"),
    ("'" + "x" * (64 * 1024 + 1) + "'", "bad/org.yaml: workspaces[0].initial_prompt: longer than 65536 characters"),
])
def test_a_bad_initial_prompt_is_refused_naming_the_place(api, orgs, value, error):
    orgs("bad", {"org.yaml": f"name: Bad\nworkspaces: [{{name: A, runtime: echo, initial_prompt: {value}}}]\n"})
    response = import_org(api, dir="bad")
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert_nothing_created()


def test_a_failed_import_leaves_no_config_files_behind(api, orgs, settings, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(BASE / "workspace-configs-templates" / "demo-pm", configs / "demo-pm")
    (configs / "broken").mkdir()
    (configs / "broken" / "config.yaml").write_text("name: Broken\nruntime: echo\nschedules: daily\n")
    settings.CONFIGS_DIR = configs
    orgs("half", {"org.yaml": """
name: Half
workspaces:
  - name: Lead
    template: demo-pm
    initial_prompt: /delegate Member go
    children: [{name: Member, template: broken}]
"""})
    response = import_org(api, dir="half")  # the second workspace's template fails after the first's files
    assert (response.status_code, response.json()) == (400, {"error": "template broken: schedules must be a list"})
    assert_nothing_created()
    assert not list((Path(settings.MOLECULE_HOME) / "workspaces").glob("*"))


# --- !include ------------------------------------------------------------------------------------

def test_includes_nest_and_resolve_from_the_org_directory(api, orgs):
    orgs("nested", {
        "org.yaml": "name: Nested\nworkspaces:\n  - !include teams/lead.yaml\n",
        "teams/lead.yaml": "name: Lead\nruntime: echo\nchildren: !include teams/members.yaml\n",
        "teams/members.yaml": "- {name: One, runtime: echo}\n- {name: Two, runtime: echo, tier: 4}\n",
    })
    response = import_org(api, dir="nested")
    assert response.status_code == 201, response.content
    assert [w["name"] for w in response.json()["workspaces"]] == ["Lead", "One", "Two"]
    assert Workspace.objects.get(name="Two").tier == 4


@pytest.mark.parametrize("target", ["../outside.yaml", "/etc/passwd", "sub/../../outside.yaml", "..%2Foutside.yaml"])
def test_an_include_outside_the_org_directory_is_refused(api, orgs, target):
    (orgs.base / "outside.yaml").write_text("name: Stolen\n")
    orgs("escape", {"org.yaml": f"name: Escape\nworkspaces:\n  - !include {target}\n"})
    response = import_org(api, dir="escape")
    assert response.status_code == 400
    assert response.json() == {"error": f"escape/org.yaml: line 3: !include {target!r} is outside the org directory"}
    assert_nothing_created()


def test_an_include_through_a_symlink_leading_out_is_refused(api, orgs):
    (orgs.base / "outside.yaml").write_text("name: Stolen\n")
    org_dir = orgs("linked", {"org.yaml": "name: Linked\nworkspaces:\n  - !include member.yaml\n"})
    (org_dir / "member.yaml").symlink_to(orgs.base / "outside.yaml")
    response = import_org(api, dir="linked")
    assert (response.status_code, response.json()["error"]) == (
        400, "linked/org.yaml: line 3: !include 'member.yaml' is outside the org directory")


def test_an_include_name_with_a_nul_byte_is_refused(api, orgs):
    orgs("nul", {"org.yaml": 'name: Nul\nworkspaces:\n  - !include "a\\0b.yaml"\n'})
    assert import_org(api, dir="nul").json() == {"error": "nul/org.yaml: line 3: !include 'a\\x00b.yaml' is outside the org directory"}


def test_an_org_yaml_linked_from_outside_is_refused(api, orgs):
    (orgs.base / "outside.yaml").write_text(SMALL_ORG)
    (orgs("linked", {"README.md": "x"}) / "org.yaml").symlink_to(orgs.base / "outside.yaml")
    assert import_org(api, dir="linked").json() == {"error": "linked/org.yaml: leads outside the org directory"}


def test_an_include_cycle_is_refused(api, orgs):
    orgs("cycle", {
        "org.yaml": "name: Cycle\nworkspaces:\n  - !include a.yaml\n",
        "a.yaml": "name: A\nchildren:\n  - !include b.yaml\n",
        "b.yaml": "name: B\nchildren:\n  - !include a.yaml\n",
    })
    response = import_org(api, dir="cycle")
    assert (response.status_code, response.json()) == (
        400, {"error": "cycle/b.yaml: line 3: include cycle: org.yaml → a.yaml → b.yaml → a.yaml"})
    assert_nothing_created()


def test_a_missing_include_names_the_file(api, orgs):
    orgs("gap", {"org.yaml": "name: Gap\nworkspaces: [!include nobody.yaml]\n"})
    assert import_org(api, dir="gap").json() == {"error": "gap/nobody.yaml: file not found"}


# --- validation before anything is created ------------------------------------------------------------

@pytest.mark.parametrize("directory", ["../workspace-configs-templates", "a/b", ".hidden", "", "/etc"])
def test_a_dir_that_is_not_a_plain_name_is_refused(api, directory):
    response = import_org(api, dir=directory)
    assert (response.status_code, response.json()) == (400, {"error": "invalid org template dir"})


def test_an_unknown_dir_is_404(api):
    response = import_org(api, dir="no-such-org")
    assert (response.status_code, response.json()) == (404, {"error": "org template not found"})


@pytest.mark.parametrize(("files", "error"), [
    ({"README.md": "x"}, "bad/org.yaml: file not found"),
    ({"org.yaml": "name: Bad\nworkspaces: [\n"}, "bad/org.yaml: invalid YAML at line 3: "),
    ({"org.yaml": "- just\n- a list\n"}, "bad/org.yaml: must be a mapping"),
    ({"org.yaml": "name: Bad\x07\n"}, "bad/org.yaml: invalid YAML: "),
    ({"org.yaml": "workspaces: [{name: A}]\n"}, "bad/org.yaml: name: is required"),
    ({"org.yaml": "name: Bad\n"}, "bad/org.yaml: workspaces: at least one workspace is required"),
    ({"org.yaml": "name: Bad\nschedules: []\nworkspaces: [{name: A}]\n"},
     "bad/org.yaml: unknown key 'schedules' (expected one of: name, description, required_env, recommended_env, "
     "defaults, workspaces)"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A, children: [{name: B, tier: 9}]}]\n"},
     "bad/org.yaml: workspaces[0].children[0].tier: must be an integer from 1 to 4"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A, template: no-such-template}]\n"},
     "bad/org.yaml: workspaces[0].template: no workspace template 'no-such-template' in CONFIGS_DIR"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A, template: ../org-templates}]\n"},
     "bad/org.yaml: workspaces[0].template: no workspace template '../org-templates' in CONFIGS_DIR"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: 'A*'}]\n"}, "bad/org.yaml: workspaces[0].name: contains invalid characters"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A, runtime: external}]\n"},
     "bad/org.yaml: workspaces[0].runtime: external workspaces cannot come from an org template; "
     "create them with POST /workspaces"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A, children: [{name: B, initial_memories: [{scope: GLOBAL, content: x}]}]}]\n"},
     "bad/org.yaml: workspaces[0].children[0].initial_memories[0].scope: GLOBAL memories can only be given to a root workspace"),
    ({"org.yaml": "name: Bad\nrequired_env: [OK_NAME, 'not a name']\nworkspaces: [{name: A}]\n"},
     "bad/org.yaml: required_env[1]: must be an environment variable name"),
    ({"org.yaml": "name: Bad\nworkspaces: [{name: A}, !include b.yaml]\n", "b.yaml": "name: B\nchildren:\n  - {name: C, tier: 0}\n"},
     "bad/b.yaml: children[0].tier: must be an integer from 1 to 4"),
])
def test_an_invalid_org_is_refused_with_the_file_and_the_problem_and_nothing_is_created(api, orgs, files, error):
    orgs("bad", files)
    response = import_org(api, dir="bad")
    assert response.status_code == 400
    assert response.json()["error"].startswith(error), response.json()
    assert_nothing_created()


def test_an_inline_template_imports_and_its_errors_name_the_body(api):
    response = import_org(api, template={"name": "Inline", "workspaces": [{"name": "Solo", "runtime": "echo"}]})
    assert response.status_code == 201, response.content
    assert response.json()["count"] == 1
    response = import_org(api, template={"name": "Inline", "workspaces": [{"role": "no name"}]})
    assert (response.status_code, response.json()) == (400, {"error": "template: workspaces[0].name: is required"})


@pytest.mark.parametrize(("body", "error"), [
    ({}, "give either dir or template"),
    ({"dir": "engineering-team", "template": {}}, "give either dir or template"),
    ({"dir": 7}, "dir must be a string"),
    ({"template": "engineering-team"}, "template must be an object"),
    ({"dir": "engineering-team", "force": "yes"}, "force must be true or false"),
    ({"dir": None, "template": None}, "give either dir or template"),
])
def test_a_malformed_body_is_refused(api, body, error):
    response = import_org(api, **body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert_nothing_created()


# --- required env ------------------------------------------------------------------------------------

def test_missing_required_env_is_refused_listing_the_names_unless_forced(api, orgs):
    orgs("keys", {"org.yaml": "name: Keys\nrequired_env: [FIRST_KEY, SECOND_KEY, THIRD_KEY]\n" + SMALL_ORG.split("\n", 2)[2]})
    ciphertext, version = encrypt("set")
    GlobalSecret.objects.create(key="SECOND_KEY", encrypted_value=ciphertext, encryption_version=version)
    response = import_org(api, dir="keys")
    assert (response.status_code, response.json()) == (400, {
        "error": "missing required env: FIRST_KEY, THIRD_KEY", "missing_env": ["FIRST_KEY", "THIRD_KEY"]})
    assert_nothing_created()
    forced = import_org(api, dir="keys", force=True)
    assert forced.status_code == 201, forced.content
    assert forced.json()["count"] == 2


def test_recommended_env_never_blocks(api, orgs):
    orgs("hints", {"org.yaml": "name: Hints\nrecommended_env: [NICE_TO_HAVE]\n" + SMALL_ORG.split("\n", 2)[2]})
    assert import_org(api, dir="hints", force=None).status_code == 201


# --- auth --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("GET", "/org/templates"), ("POST", "/org/import")])
def test_both_routes_need_the_operator(api, method, path):
    body = {"dir": "research-desk"} if method == "POST" else None
    anonymous = api(method, path, body, token=None)
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "admin auth required"})
    member = Workspace.objects.create(name="Member")
    _, token = token_mint(workspace=member)
    with_workspace_token = api(method, path, body, token=token)
    assert (with_workspace_token.status_code, with_workspace_token.json()) == (401, {"error": "invalid admin auth token"})
    assert Workspace.objects.count() == 1
    assert api(method, path, body).status_code in (200, 201)


def test_a_staff_session_lists_and_imports(operator_client):
    assert operator_client.get("/org/templates").status_code == 200
    response = operator_client.post("/org/import", {"dir": "research-desk"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["count"] == 3
