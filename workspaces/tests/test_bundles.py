"""Bundle export and import (spec §14): shape, recursion, no secrets ever, round trip."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from activity.models import StructureEvent
from molecule_site.errors import ApiError
from molecule_site.tests.backends import use_backend
from schedules.models import WorkspaceSchedule
from secrets_app.crypto import encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces import bundles, filestores, provisioning
from workspaces.models import Workspace, WorkspaceConfig, WorkspaceStatus
from workspaces.provisioners.none import NoProvisioner

pytestmark = pytest.mark.django_db

SHIPPED = Path(django_settings.BASE_DIR) / "workspace-configs-templates"
SECRET_KEY_NAME = "BUNDLE_TEST_SECRET_KEY_NAME"
SECRET_VALUE = "sk-live-plaintext-0123456789abcdef"
GLOBAL_KEY_NAME = "BUNDLE_TEST_GLOBAL_KEY_NAME"
GLOBAL_VALUE = "global-plaintext-value-42"
UNAVAILABLE = "Docker not available — workspace containers require a Docker daemon or external provisioning."


@pytest.fixture(autouse=True)
def dirs(settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"
    settings.CONFIGS_DIR = SHIPPED


def put(workspace, path, content):
    target = filestores.host_root_dir(workspace.id) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)


def add_secret(workspace, key, value):
    ciphertext, version = encrypt(value)
    WorkspaceSecret.objects.create(workspace=workspace, key=key, encrypted_value=ciphertext, encryption_version=version)


def add_global(key, value):
    ciphertext, version = encrypt(value)
    GlobalSecret.objects.create(key=key, encrypted_value=ciphertext, encryption_version=version)


@pytest.fixture
def team():
    """Team Lead (template) → Researcher (template) → Fact Checker (own files), plus a removed child."""
    lead = Workspace.objects.create(name="Team Lead", role="Leads the team", tier=2)
    researcher = Workspace.objects.create(name="Researcher", role="Finds sources", tier=3, parent=lead)
    checker = Workspace.objects.create(name="Fact Checker", tier=1, parent=researcher, runtime="claude-code",
                                       agent_card={"name": "Fact Checker", "skills": []})
    Workspace.objects.create(name="Gone", tier=1, parent=lead, status=WorkspaceStatus.REMOVED)
    put(checker, "config.yaml", "name: Fact Checker\nruntime: claude-code\nprompt_files: [system-prompt.md, STYLE.md]\n")
    put(checker, "system-prompt.md", "Check every fact.")
    put(checker, "STYLE.md", "Be terse.")
    put(checker, "skills/verify/SKILL.md", "---\nname: Verify\ndescription: Cross-checks claims.\n---\nBody")
    put(checker, "skills/verify/scripts/check.py", "print('ok')\n")
    put(checker, "skills/verify/references/deep/er/note.md", "deep")
    put(checker, "skills/verify/logo.png", b"\x89PNG\r\n\x1a\n\xff\x00")
    put(checker, "skills/verify/.env", "TOKEN=abc")
    put(checker, "skills/.hidden-skill/SKILL.md", "x")
    put(checker, ".auth_token", "workspace-bearer-token-value")
    put(checker, "notes.md", "not referenced by config.yaml")
    return lead, researcher, checker


def add_schedules(lead, checker):
    """An operator's daily schedule on the lead; a disabled runtime one (stale, run before, Berlin
    time) and a template one on the checker: run state that must not travel."""
    past = timezone.now() - timedelta(days=30)
    WorkspaceSchedule.objects.create(workspace=lead, name="standup", cron_expr="0 9 * * 1-5", prompt="Plan the day.",
                                     source="operator", next_fire_at=past)
    WorkspaceSchedule.objects.create(workspace=checker, name="audit", cron_expr="30 18 * * *", timezone="Europe/Berlin",
                                     prompt="Re-check yesterday's facts.", enabled=False, source="runtime",
                                     status="stale", consecutive_empty=3, run_count=7, last_run_at=past,
                                     last_status="stale", next_fire_at=past)
    WorkspaceSchedule.objects.create(workspace=checker, name="weekly", cron_expr="@weekly", prompt="Summarise the week.",
                                     source="template", next_fire_at=past)


def strip_ids(bundle: dict) -> dict:
    copy = {k: v for k, v in bundle.items() if k != "id"}
    copy["sub_workspaces"] = [strip_ids(child) for child in bundle["sub_workspaces"]]
    return copy


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.body


# --- export ------------------------------------------------------------------------------------------

def test_export_from_a_template(team):
    lead, researcher, _ = team
    bundle = bundles.bundle_export(workspace_id=str(researcher.id))
    template = SHIPPED / "researcher"
    skill_md = (template / "skills" / "web-research" / "SKILL.md").read_text()
    assert {k: v for k, v in bundle.items() if k != "sub_workspaces"} == {
        "schema": "1.0", "id": str(researcher.id), "name": "Researcher", "description": "Finds sources", "tier": 3,
        "model": "", "system_prompt": (template / "system-prompt.md").read_text(),
        "skills": [{
            "id": "web-research", "name": "web-research",
            "description": "Search the web, read the most relevant pages and return a cited summary.",
            "files": {"SKILL.md": skill_md},
        }],
        "tools": [], "prompts": {"config.yaml": (template / "config.yaml").read_text()}, "schedules": [],
        "agent_card": None, "author": "", "version": "1.0.0",
    }
    assert [child["name"] for child in bundle["sub_workspaces"]] == ["Fact Checker"]


def test_export_recurses_skips_removed_children_and_adds_referenced_files(team):
    lead, _, checker = team
    bundle = bundles.bundle_export(workspace_id=lead.id)
    assert bundle["prompts"]["team-brief.md"] == (SHIPPED / "team-lead" / "team-brief.md").read_text()
    assert [c["name"] for c in bundle["sub_workspaces"]] == ["Researcher"]
    checker_bundle = bundle["sub_workspaces"][0]["sub_workspaces"][0]
    assert checker_bundle["id"] == str(checker.id)
    assert checker_bundle["system_prompt"] == "Check every fact."
    assert checker_bundle["agent_card"] == {"name": "Fact Checker", "skills": []}
    assert set(checker_bundle["prompts"]) == {"config.yaml", "STYLE.md"}
    assert checker_bundle["skills"] == [{
        "id": "verify", "name": "Verify", "description": "Cross-checks claims.",
        "files": {
            "SKILL.md": "---\nname: Verify\ndescription: Cross-checks claims.\n---\nBody",
            "references/deep/er/note.md": "deep",
            "scripts/check.py": "print('ok')\n",
        },
    }]
    assert checker_bundle["sub_workspaces"] == []


def test_export_never_contains_secrets(team):
    lead, researcher, checker = team
    for workspace in team:
        add_secret(workspace, SECRET_KEY_NAME, SECRET_VALUE)
    add_global(GLOBAL_KEY_NAME, GLOBAL_VALUE)
    raw = json.dumps(bundles.bundle_export(workspace_id=lead.id))
    for forbidden in (SECRET_KEY_NAME, SECRET_VALUE, GLOBAL_KEY_NAME, GLOBAL_VALUE, "workspace-bearer-token-value",
                      "TOKEN=abc", ".auth_token", ".env"):
        assert forbidden not in raw, forbidden


def test_export_redacts_secret_values_pasted_into_files(team):
    _, _, checker = team
    add_secret(checker, "OPENAI_API_KEY", SECRET_VALUE)
    add_global("SHORT", "abc")  # too short to redact safely
    put(checker, "system-prompt.md", f"Use key {SECRET_VALUE} for abc.")
    bundle = bundles.bundle_export(workspace_id=checker.id)
    assert bundle["system_prompt"] == "Use key [REDACTED] for abc."
    assert SECRET_VALUE not in json.dumps(bundle)


def test_export_without_files_or_template(team):
    loner = Workspace.objects.create(name="No Template Here", tier=1)
    bundle = bundles.bundle_export(workspace_id=loner.id)
    assert (bundle["system_prompt"], bundle["skills"], bundle["prompts"]) == ("", [], {})


def test_export_carries_each_workspaces_schedules_without_their_run_state(team):
    lead, _, checker = team
    add_schedules(lead, checker)
    bundle = bundles.bundle_export(workspace_id=lead.id)
    assert bundle["schedules"] == [{
        "name": "standup", "cron_expr": "0 9 * * 1-5", "timezone": "UTC", "prompt": "Plan the day.", "enabled": True,
        "source": "operator",
    }]
    assert bundle["sub_workspaces"][0]["schedules"] == []
    assert bundle["sub_workspaces"][0]["sub_workspaces"][0]["schedules"] == [
        {"name": "audit", "cron_expr": "30 18 * * *", "timezone": "Europe/Berlin",
         "prompt": "Re-check yesterday's facts.", "enabled": False, "source": "runtime"},
        {"name": "weekly", "cron_expr": "@weekly", "timezone": "UTC", "prompt": "Summarise the week.", "enabled": True,
         "source": "template"},
    ]


def test_export_redacts_secret_values_in_schedule_prompts(team):
    lead, _, _ = team
    add_secret(lead, "OPENAI_API_KEY", SECRET_VALUE)
    WorkspaceSchedule.objects.create(workspace=lead, name="leaky", cron_expr="@daily", prompt=f"Use {SECRET_VALUE}.")
    assert bundles.bundle_export(workspace_id=lead.id)["schedules"][0]["prompt"] == "Use [REDACTED]."


@pytest.mark.parametrize("workspace_id", ["not-a-uuid", "6f1c2f3e-0000-4000-8000-000000000000", "removed"])
def test_export_unknown_or_removed_is_not_found(team, workspace_id):
    if workspace_id == "removed":
        workspace_id = Workspace.objects.get(name="Gone").id
    assert error_of(lambda: bundles.bundle_export(workspace_id=workspace_id)) == (404, {"error": "bundle not found"})


# --- import ------------------------------------------------------------------------------------------

def small_bundle(**extra):
    return {
        "schema": "1.0", "id": "bundle-root", "name": "Imported Lead", "description": "Leads", "tier": 2,
        "system_prompt": "Lead well.",
        "prompts": {"config.yaml": "name: Imported Lead\nruntime: crewai  # adapter\nruntime_config:\n  runtime: no\n"},
        "skills": [{"id": "plan", "name": "Plan", "files": {"SKILL.md": "---\nname: plan\n---\n", "scripts/p.py": "1"}}],
        "sub_workspaces": [{"id": "bundle-child", "name": "Imported Child", "tier": 1}],
        **extra,
    }


def test_import_creates_the_tree_writes_files_and_fails_rows_without_provisioner(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = bundles.bundle_import(bundle=small_bundle())
    root = Workspace.objects.get(pk=body["workspace_id"])
    child = Workspace.objects.get(pk=body["children"][0]["workspace_id"])
    # answered "provisioning" as the spec says (and a create does); the rows show the failure
    assert body == {
        "workspace_id": str(root.id), "name": "Imported Lead", "status": "provisioning",
        "children": [{"workspace_id": str(child.id), "name": "Imported Child", "status": "provisioning"}],
    }
    assert (root.name, root.role, root.tier, root.runtime, root.parent_id, root.source_bundle_id, root.status) == (
        "Imported Lead", "Leads", 2, "crewai", None, "bundle-root", "failed",
    )
    assert (child.role, child.tier, child.runtime, child.parent_id, child.source_bundle_id) == (
        None, 1, "langgraph", root.id, "bundle-child",
    )
    assert root.last_sample_error == UNAVAILABLE
    assert root.awareness_namespace == f"workspace:{root.id}"
    assert WorkspaceConfig.objects.get(workspace=root).data == {
        "name": "Imported Lead", "runtime": "crewai", "tier": 2, "template": "",
    }
    configs = filestores.host_root_dir(root.id)
    assert (configs / "system-prompt.md").read_text() == "Lead well."
    assert (configs / "config.yaml").read_text().startswith("name: Imported Lead\nruntime: crewai")
    assert (configs / "skills" / "plan" / "scripts" / "p.py").read_text() == "1"
    assert "name: Imported Child" in (filestores.host_root_dir(child.id) / "config.yaml").read_text()  # generated
    events = [(e.event_type, e.payload) for e in StructureEvent.objects.filter(workspace_id=root.id).order_by("created_at")]
    assert events == [
        ("WORKSPACE_PROVISIONING", {"name": "Imported Lead", "tier": 2, "source_bundle_id": "bundle-root"}),
        ("WORKSPACE_PROVISION_FAILED", {"error": "Docker not available on this platform instance"}),
    ]


def test_import_recreates_schedules_with_their_source_and_a_fresh_next_fire(django_capture_on_commit_callbacks):
    before = timezone.now()
    bundle = small_bundle(schedules=[
        {"name": "standup", "cron_expr": "0 9 * * 1-5", "timezone": "Europe/Berlin", "prompt": "Plan.", "enabled": True,
         "source": "template"},
        {"name": "nightly", "cron_expr": "@daily", "prompt": "Tidy up.", "enabled": False, "source": "runtime"},
        {"name": "plain", "cron_expr": "*/5 * * * *", "prompt": "Ping."},  # defaults: UTC, enabled, operator
    ])
    bundle["sub_workspaces"][0]["schedules"] = [{"name": "child", "cron_expr": "0 0 1 * *", "prompt": "Report.",
                                                 "source": "operator"}]
    with django_capture_on_commit_callbacks(execute=True):
        body = bundles.bundle_import(bundle=bundle)
    rows = {s.name: s for s in WorkspaceSchedule.objects.filter(workspace_id=body["workspace_id"])}
    assert {name: (s.cron_expr, s.timezone, s.prompt, s.enabled, s.source) for name, s in rows.items()} == {
        "standup": ("0 9 * * 1-5", "Europe/Berlin", "Plan.", True, "template"),
        "nightly": ("@daily", "UTC", "Tidy up.", False, "runtime"),
        "plain": ("*/5 * * * *", "UTC", "Ping.", True, "operator"),
    }
    assert before < rows["standup"].next_fire_at <= before + timedelta(days=4)
    assert before < rows["plain"].next_fire_at <= before + timedelta(minutes=5, seconds=1)
    assert rows["nightly"].next_fire_at is None
    assert {(s.status, s.run_count, s.last_run_at) for s in rows.values()} == {("ok", 0, None)}
    child = WorkspaceSchedule.objects.get(workspace_id=body["children"][0]["workspace_id"])
    assert (child.name, child.source) == ("child", "operator")


def test_import_without_schedules_creates_none():
    bundles.bundle_import(bundle=small_bundle())
    assert not WorkspaceSchedule.objects.exists()


def test_import_with_a_provisioner_leaves_rows_provisioning_and_starts_them(monkeypatch):
    class Ready(NoProvisioner):
        available = True

    started = []
    use_backend(monkeypatch, Ready())
    monkeypatch.setattr(provisioning, "provision_on_commit", started.extend)
    body = bundles.bundle_import(bundle=small_bundle())
    assert (body["status"], body["children"][0]["status"]) == ("provisioning", "provisioning")
    assert "error" not in body
    assert started == [Workspace.objects.get(name="Imported Lead").id, Workspace.objects.get(name="Imported Child").id]
    assert set(Workspace.objects.values_list("status", flat=True)) == {"provisioning"}


def test_import_defaults_tier_and_omits_children_when_none():
    body = bundles.bundle_import(bundle={"name": "Bare"})
    assert "children" not in body
    workspace = Workspace.objects.get(pk=body["workspace_id"])
    assert (workspace.tier, workspace.runtime, workspace.source_bundle_id) == (3, "langgraph", None)


def test_import_never_plants_hidden_files(tmp_path):
    bundle = small_bundle(prompts={".auth_token": "stolen", "config.yaml": "name: X\n", "a/.env": "K=V"})
    bundle["skills"] = [{"id": "s", "files": {".secrets": "x", "SKILL.md": "ok"}}, {"id": ".sneaky", "files": {"a": "b"}}]
    body = bundles.bundle_import(bundle=bundle)
    configs = filestores.host_root_dir(body["workspace_id"])
    written = sorted(str(p.relative_to(configs)) for p in configs.rglob("*") if p.is_file())
    assert written == ["config.yaml", "skills/s/SKILL.md", "system-prompt.md"]


@pytest.mark.parametrize(
    "bundle",
    [
        [], "x", {}, {"name": ""}, {"name": 5}, {"name": "a\nb"}, {"name": "bad{name}"},
        {"name": "x", "tier": 9}, {"name": "x", "tier": "2"}, {"name": "x", "tier": True},
        {"name": "x", "description": 5}, {"name": "x", "system_prompt": ["a"]},
        {"name": "x", "prompts": ["config.yaml"]}, {"name": "x", "prompts": {"config.yaml": 5}},
        {"name": "x", "prompts": {"../../evil.md": "x"}}, {"name": "x", "prompts": {"/etc/passwd": "x"}},
        {"name": "x", "skills": {"id": "s"}}, {"name": "x", "skills": ["s"]}, {"name": "x", "skills": [{"id": "../s"}]},
        {"name": "x", "skills": [{"id": "a/b"}]}, {"name": "x", "skills": [{"files": {}}]},
        {"name": "x", "skills": [{"id": "s", "files": {"../../x": "y"}}]},
        {"name": "x", "skills": [{"id": "s", "files": {"..%2Fx": "y"}}]},
        {"name": "x", "sub_workspaces": {"name": "y"}}, {"name": "x", "sub_workspaces": [{"name": ""}]},
        {"name": "x", "sub_workspaces": [{"name": "ok", "prompts": {"../x": "y"}}]},
        {"name": "x", "id": 5},
        {"name": "x", "system_prompt": "x" * (1024 * 1024 + 1)},
    ],
)
def test_import_refuses_bad_bundles_without_creating_anything(bundle, settings):
    assert error_of(lambda: bundles.bundle_import(bundle=bundle)) == (400, {"error": "invalid bundle"})
    assert not Workspace.objects.exists()
    assert not (Path(settings.MOLECULE_HOME) / "workspaces").exists()


def schedule(**fields):
    return {"name": "daily", "cron_expr": "0 9 * * *", "prompt": "Go.", **fields}


@pytest.mark.parametrize(
    ("schedules", "detail"),
    [
        ({"name": "daily"}, "schedules must be a list"),
        (["daily"], "schedules[0] must be a mapping"),
        ([schedule(name=None)], "schedules[0]: name is required"),
        ([schedule(prompt="  ")], "schedules[0]: prompt must not be empty"),
        ([schedule(), schedule(cron_expr="61 * * * *")], "schedules[1]: invalid cron_expr: "),
        ([schedule(cron_expr=["0", "9"])], "schedules[0]: cron_expr must be a string"),
        ([schedule(timezone="Mars/Olympus")], "schedules[0]: invalid timezone: "),
        ([schedule(enabled="yes")], "schedules[0]: enabled must be a boolean"),
        ([schedule(source="hacker")], "schedules[0]: source must be one of template, runtime, operator"),
        ([schedule(source=["operator"])], "schedules[0]: source must be one of "),
        ([schedule(), schedule()], "schedules[1]: duplicate schedule name 'daily'"),
        ([schedule(name=f"s{i}") for i in range(101)], "schedules: a workspace has at most 100 schedules"),
    ],
)
def test_import_refuses_bad_schedules_saying_which_without_creating_anything(schedules, detail, settings):
    status, body = error_of(lambda: bundles.bundle_import(bundle=small_bundle(schedules=schedules)))
    assert (status, body["error"], set(body)) == (400, "invalid bundle", {"error", "detail"})
    assert body["detail"].startswith(detail), body["detail"]
    assert not Workspace.objects.exists()
    assert not WorkspaceSchedule.objects.exists()
    assert not (Path(settings.MOLECULE_HOME) / "workspaces").exists()


def test_a_bad_schedule_deep_in_the_tree_names_its_place_and_undoes_the_whole_import(settings):
    bundle = small_bundle(schedules=[schedule()])
    bundle["sub_workspaces"] = [{"name": "ok child", "schedules": [schedule()]},
                                {"name": "bad child", "schedules": [schedule(), schedule(name="x", cron_expr="* *")]}]
    status, body = error_of(lambda: bundles.bundle_import(bundle=bundle))
    assert (status, body["error"]) == (400, "invalid bundle")
    assert body["detail"].startswith("sub_workspaces[1].schedules[1]: invalid cron_expr: cron expression must have 5")
    assert not Workspace.objects.exists()
    assert not WorkspaceSchedule.objects.exists()


def test_import_refuses_oversized_trees():
    chain = {"name": "leaf"}
    for level in range(bundles.MAX_BUNDLE_DEPTH + 1):
        chain = {"name": f"level {level}", "sub_workspaces": [chain]}
    assert error_of(lambda: bundles.bundle_import(bundle=chain)) == (400, {"error": "invalid bundle"})
    wide = {"name": "root", "sub_workspaces": [{"name": f"c{i}"} for i in range(bundles.MAX_BUNDLE_WORKSPACES)]}
    assert error_of(lambda: bundles.bundle_import(bundle=wide)) == (400, {"error": "invalid bundle"})
    assert not Workspace.objects.exists()


def test_failed_import_leaves_no_rows_and_no_files(monkeypatch, settings):
    calls = []
    original = filestores.HostDirectoryStore.write

    def flaky(self, path, data):
        calls.append(path)
        if self.workspace_id != created_first():
            raise OSError(28, "No space left on device")
        original(self, path, data)

    def created_first():
        return Workspace.objects.order_by("created_at").values_list("id", flat=True).first()

    monkeypatch.setattr(filestores.HostDirectoryStore, "write", flaky)
    assert error_of(lambda: bundles.bundle_import(bundle=small_bundle())) == (
        500, {"error": "failed to write bundle files"},
    )
    assert calls  # the root's files were written before the child failed …
    assert not Workspace.objects.exists()  # … and everything was undone
    assert list((Path(settings.MOLECULE_HOME) / "workspaces").iterdir()) == []


# --- round trip ------------------------------------------------------------------------------------------

def test_export_import_export_round_trips_a_three_level_tree(team):
    lead, researcher, checker = team
    add_secret(lead, SECRET_KEY_NAME, SECRET_VALUE)
    checker.agent_card = None  # a registered runtime's card is not imported; the new runtime brings its own
    checker.save()
    add_schedules(lead, checker)
    first = bundles.bundle_export(workspace_id=lead.id)
    imported = bundles.bundle_import(bundle=json.loads(json.dumps(first)))
    second = bundles.bundle_export(workspace_id=imported["workspace_id"])

    assert strip_ids(second) == strip_ids(first)
    assert second["id"] != first["id"]

    new_lead = Workspace.objects.get(pk=imported["workspace_id"])
    new_researcher = Workspace.objects.get(parent=new_lead)
    new_checker = Workspace.objects.get(parent=new_researcher)
    assert [(w.name, w.tier, w.source_bundle_id) for w in (new_lead, new_researcher, new_checker)] == [
        ("Team Lead", 2, str(lead.id)), ("Researcher", 3, str(researcher.id)), ("Fact Checker", 1, str(checker.id)),
    ]
    assert new_checker.runtime == "claude-code"
    assert not WorkspaceSecret.objects.filter(workspace__in=[new_lead, new_researcher, new_checker]).exists()
    assert [(s.name, s.source, s.status, s.run_count) for s in WorkspaceSchedule.objects.filter(
        workspace=new_checker).order_by("name")] == [("audit", "runtime", "ok", 0), ("weekly", "template", "ok", 0)]
    assert WorkspaceSchedule.objects.get(workspace=new_lead).next_fire_at > timezone.now()
    # the imported workspaces now read their own files, not the templates
    assert filestores.host_root_dir(new_lead.id).joinpath("team-brief.md").is_file()
