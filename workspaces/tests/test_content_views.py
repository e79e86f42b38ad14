"""Templates, files, shared-context and bundle routes on the wire (spec §14): auth, status codes,
exact bodies, compact JSON, and path traversal refused on every route."""

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from registry.tokens import token_mint
from schedules.models import WorkspaceSchedule
from secrets_app.crypto import encrypt
from secrets_app.models import WorkspaceSecret
from workspaces import filestores
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

ADMIN = "admin-token-for-tests"
SHIPPED = Path(django_settings.BASE_DIR) / "workspace-configs-templates"
UNKNOWN = "6f1c2f3e-0000-4000-8000-000000000000"
ROOT_ERROR = {"error": "root must be one of: /configs, /workspace, /home, /plugins"}


@pytest.fixture(autouse=True)
def environment(settings, tmp_path):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.MOLECULE_HOME = tmp_path / "home"
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("team-lead", "researcher"):
        source = SHIPPED / name
        for path in source.rglob("*"):
            if path.is_file():
                target = configs / name / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    settings.CONFIGS_DIR = configs
    return configs


@pytest.fixture
def api(client):
    def call(method, path, body=None, token=ADMIN):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        if body is not None and method != "GET":
            kwargs.update(data=body if isinstance(body, (str, bytes)) else json.dumps(body), content_type="application/json")
        return getattr(client, method.lower())(path, **kwargs)

    return call


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Researcher", tier=2)


def own(workspace) -> Path:
    return filestores.host_root_dir(workspace.id)


# --- auth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("GET", "/templates"), ("POST", "/templates/import"),
                                              ("GET", f"/bundles/export/{UNKNOWN}"), ("POST", "/bundles/import")])
def test_templates_and_bundles_need_admin_auth(api, method, path):
    response = api(method, path, {}, token=None)
    assert (response.status_code, response.json()) == (401, {"error": "admin auth required"})
    response = api(method, path, {}, token="wrong")
    assert (response.status_code, response.json()) == (401, {"error": "invalid admin auth token"})


@pytest.mark.parametrize(("method", "suffix"), [("GET", "files"), ("PUT", "files"), ("GET", "files/config.yaml"),
                                                ("PUT", "files/config.yaml"), ("DELETE", "files/config.yaml"),
                                                ("GET", "shared-context")])
def test_files_and_shared_context_need_the_workspace_token(api, workspace, method, suffix):
    other = Workspace.objects.create(name="Other")
    _, other_token = token_mint(workspace=other)
    _, own_token = token_mint(workspace=workspace)
    path = f"/workspaces/{workspace.id}/{suffix}"
    body = {"content": "x", "files": {"a.md": "x"}}
    assert api(method, path, body, token=None).json() == {"error": "missing workspace auth token"}
    response = api(method, path, body, token=other_token)
    assert (response.status_code, response.json()) == (401, {"error": "invalid workspace auth token"})
    assert api(method, path, body, token=own_token).status_code == 200


# --- templates -------------------------------------------------------------------------------------

def test_list_templates(api):
    response = api("GET", "/templates")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert [item["id"] for item in response.json()] == ["researcher", "team-lead"]
    assert b'"skill_count":1' in response.content  # compact JSON


def test_import_template(api, environment):
    response = api("POST", "/templates/import", {"name": "Data Analyst", "files": {"system-prompt.md": "Analyse."}})
    assert (response.status_code, response.content) == (201, b'{"status":"imported","id":"data-analyst","name":"Data Analyst"}')
    assert (environment / "data-analyst" / "config.yaml").is_file()
    assert "data-analyst" in [item["id"] for item in api("GET", "/templates").json()]
    again = api("POST", "/templates/import", {"name": "data analyst", "files": {}})
    assert (again.status_code, again.json()) == (409, {"error": "template already exists", "id": "data-analyst"})


@pytest.mark.parametrize(
    "path", ["../../escape.md", "/etc/passwd", "..%2F..%2Fescape.md", "%2e%2e/escape.md", "skills/../../escape.md"],
)
def test_import_template_refuses_traversal(api, environment, tmp_path, path):
    response = api("POST", "/templates/import", {"name": "evil", "files": {path: "pwned"}})
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})
    assert not (environment / "evil").exists()
    assert not list(tmp_path.rglob("escape.md"))


def test_import_template_limits_and_bad_bodies(api):
    response = api("POST", "/templates/import", {"name": "big", "files": {f"{i}.md": "x" for i in range(201)}})
    assert (response.status_code, response.content) == (400, b'{"error":"too many files (201), max 200"}')
    for body in ("{not json", "[]", {"files": {}}, {"name": "x", "files": "nope"}):
        response = api("POST", "/templates/import", body)
        assert (response.status_code, response.json()) == (400, {"error": "invalid request body"}), body


def test_wrong_method_is_a_plain_404(api):
    response = api("POST", "/templates", {})
    assert (response.status_code, response.content) == (404, b"404 page not found")


# --- files: list ------------------------------------------------------------------------------------

def test_list_files_falls_back_to_the_template(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/files")
    assert response.status_code == 200
    assert {"path": "config.yaml", "size": (SHIPPED / "researcher" / "config.yaml").stat().st_size, "dir": False} in (
        response.json()
    )
    assert b'"dir":false' in response.content
    nested = api("GET", f"/workspaces/{workspace.id}/files?root=/configs&path=skills&depth=2").json()
    assert [e["path"] for e in nested] == ["skills/web-research", "skills/web-research/SKILL.md"]


@pytest.mark.parametrize(
    ("query", "error"),
    [("root=/etc", ROOT_ERROR), ("root=", None), ("depth=0", {"error": "depth must be 1-5"}),
     ("depth=6", {"error": "depth must be 1-5"}), ("depth=abc", {"error": "depth must be 1-5"}),
     ("path=../..", {"error": "invalid path"}), ("path=/etc", {"error": "invalid path"}),
     ("path=..%252F..", {"error": "invalid path"}), ("path=%2e%2e", {"error": "invalid path"})],
)
def test_list_files_validates_query(api, workspace, query, error):
    response = api("GET", f"/workspaces/{workspace.id}/files?{query}")
    if error is None:
        assert response.status_code == 200  # empty root means the default
    else:
        assert (response.status_code, response.json()) == (400, error)


@pytest.mark.parametrize("workspace_id", [UNKNOWN, "not-a-uuid"])
def test_files_of_unknown_workspace(api, workspace_id):
    for method, suffix in [("GET", "files"), ("GET", "files/config.yaml"), ("PUT", "files/a.md"),
                           ("PUT", "files"), ("DELETE", "files/a.md"), ("GET", "shared-context")]:
        response = api(method, f"/workspaces/{workspace_id}/{suffix}", {"content": "x", "files": {"a.md": "x"}})
        assert (response.status_code, response.json()) == (404, {"error": "workspace not found"}), (method, suffix)


# --- files: read / write / delete --------------------------------------------------------------------

def test_read_write_delete_cycle(api, workspace):
    path = f"/workspaces/{workspace.id}/files/notes/todo.md"
    response = api("PUT", path, {"content": "ship it"})
    assert (response.status_code, response.content) == (200, b'{"status":"saved","path":"notes/todo.md"}')
    response = api("GET", path)
    assert (response.status_code, response.json()) == (200, {"path": "notes/todo.md", "content": "ship it", "size": 7})
    # the first write copied the template: its files are still there
    assert api("GET", f"/workspaces/{workspace.id}/files/system-prompt.md").status_code == 200
    response = api("DELETE", path)
    assert (response.status_code, response.content) == (200, b'{"status":"deleted","path":"notes/todo.md"}')
    response = api("GET", path)
    assert (response.status_code, response.json()) == (404, {"error": "file not found"})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_name_longer_than_the_file_system_takes_is_an_invalid_path(api, workspace, method):
    """The fuzz run's ``DELETE …/files/<300 bytes>`` was a 500 ``File name too long``."""
    response = api(method, f"/workspaces/{workspace.id}/files/notes/{'ṯ' * 100}.md", {"content": "x"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})


def test_read_without_template_or_files(api):
    loner = Workspace.objects.create(name="Nobody")
    response = api("GET", f"/workspaces/{loner.id}/files/config.yaml")
    assert (response.status_code, response.json()) == (404, {"error": "file not found (container offline, no template)"})
    assert api("GET", f"/workspaces/{loner.id}/files").json() == []


def test_read_root_is_validated(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/files/config.yaml?root=/root")
    assert (response.status_code, response.json()) == (400, ROOT_ERROR)


@pytest.mark.parametrize("bad", ["{oops", "[]", {}, {"content": 5}, {"content": None}])
def test_write_refuses_bad_bodies(api, workspace, bad):
    response = api("PUT", f"/workspaces/{workspace.id}/files/a.md", bad)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


def test_write_too_large(api, workspace):
    response = api("PUT", f"/workspaces/{workspace.id}/files/a.md", {"content": "x" * (1024 * 1024 + 1)})
    assert (response.status_code, response.json()) == (413, {"error": "file too large", "path": "a.md", "max_bytes": 1048576})


@pytest.mark.parametrize(
    "suffix",
    ["../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "..%252F..%252Fetc%252Fpasswd",
     "skills/../../x", "a/..", "%2Fetc%2Fpasswd", ".", "/etc/passwd"],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_every_file_route_refuses_traversal(api, workspace, tmp_path, method, suffix):
    response = api(method, f"/workspaces/{workspace.id}/files/{suffix}", {"content": "pwned"})
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})
    assert not own(workspace).exists()


def test_path_is_checked_before_the_body(api, workspace):
    response = api("PUT", f"/workspaces/{workspace.id}/files/../x", "{broken")
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})


def test_symlink_escape_is_refused_over_the_wire(api, workspace, tmp_path):
    (tmp_path / "host-secret").write_text("s3cr3t")
    own(workspace).mkdir(parents=True)
    (own(workspace) / "link").symlink_to(tmp_path / "host-secret")
    response = api("GET", f"/workspaces/{workspace.id}/files/link")
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})
    assert b"s3cr3t" not in response.content
    assert api("PUT", f"/workspaces/{workspace.id}/files/link", {"content": "x"}).status_code == 400
    assert (tmp_path / "host-secret").read_text() == "s3cr3t"


# --- files: replace set ------------------------------------------------------------------------------

def test_replace_files(api, workspace):
    response = api("PUT", f"/workspaces/{workspace.id}/files", {"files": {"a.md": "A", "skills/x/SKILL.md": "X"}})
    assert response.status_code == 200
    assert response.content == (
        b'{"status":"replaced","workspace":"' + str(workspace.id).encode() + b'","files":2,"source":"host"}'
    )
    assert (own(workspace) / "skills" / "x" / "SKILL.md").read_text() == "X"


@pytest.mark.parametrize(
    ("body", "error"),
    [({"files": {f"{i}.md": "x" for i in range(201)}}, "too many files (201), max 200"),
     ({"files": {"../x.md": "x"}}, "invalid path"), ({"files": {"%2e%2e/x.md": "x"}}, "invalid path"),
     ({"files": "x"}, "invalid request body"), ({}, "invalid request body"), ("nope", "invalid request body")],
)
def test_replace_files_refuses(api, workspace, body, error):
    response = api("PUT", f"/workspaces/{workspace.id}/files", body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert not own(workspace).exists()


# --- shared context -------------------------------------------------------------------------------------

def test_shared_context(api):
    lead = Workspace.objects.create(name="Team Lead")
    response = api("GET", f"/workspaces/{lead.id}/shared-context")
    assert response.status_code == 200
    assert response.json() == [{"path": "team-brief.md", "content": (SHIPPED / "team-lead" / "team-brief.md").read_text()}]
    loner = Workspace.objects.create(name="Nobody")
    assert api("GET", f"/workspaces/{loner.id}/shared-context").content == b"[]"


# --- bundles ----------------------------------------------------------------------------------------------

def test_bundle_export_and_import_over_the_wire(api, django_capture_on_commit_callbacks):
    lead = Workspace.objects.create(name="Team Lead", role="Leads", tier=2)
    Workspace.objects.create(name="Researcher", tier=3, parent=lead)
    ciphertext, version = encrypt("sk-wire-secret-value-123456")
    WorkspaceSecret.objects.create(workspace=lead, key="WIRE_SECRET_KEY", encrypted_value=ciphertext,
                                   encryption_version=version)
    WorkspaceSchedule.objects.create(workspace=lead, name="standup", cron_expr="0 9 * * *", prompt="Plan.",
                                     source="template")
    response = api("GET", f"/bundles/export/{lead.id}")
    assert response.status_code == 200
    assert b'"schema":"1.0"' in response.content and b'"agent_card":null' in response.content
    assert b"WIRE_SECRET_KEY" not in response.content and b"sk-wire-secret-value-123456" not in response.content
    bundle = response.json()

    with django_capture_on_commit_callbacks(execute=True):
        response = api("POST", "/bundles/import", bundle)
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["status"], [c["name"] for c in body["children"]]) == ("Team Lead", "provisioning", ["Researcher"])
    assert Workspace.objects.get(pk=body["workspace_id"]).source_bundle_id == str(lead.id)
    assert list(WorkspaceSchedule.objects.filter(workspace_id=body["workspace_id"]).values_list("name", "source")) == [
        ("standup", "template")]


@pytest.mark.parametrize("bundle", ["{broken", "[]", {}, {"name": "x", "tier": 99}])
def test_bundle_import_refuses_invalid_bundles(api, bundle):
    response = api("POST", "/bundles/import", bundle)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid bundle"}')
    assert not Workspace.objects.exists()


def test_bundle_import_says_which_schedule_is_bad(api):
    bundle = {"name": "x", "schedules": [{"name": "daily", "cron_expr": "0 9 * * *", "prompt": "Go.", "source": "root"}]}
    response = api("POST", "/bundles/import", bundle)
    assert (response.status_code, response.content) == (
        400, b'{"error":"invalid bundle","detail":"schedules[0]: source must be one of template, runtime, operator"}',
    )
    assert not Workspace.objects.exists()


@pytest.mark.parametrize("workspace_id", [UNKNOWN, "not-a-uuid"])
def test_bundle_export_not_found(api, workspace_id):
    response = api("GET", f"/bundles/export/{workspace_id}")
    assert (response.status_code, response.content) == (404, b'{"error":"bundle not found"}')
