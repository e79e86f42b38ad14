"""The plugin routes (spec §18, §19): registry, sources, per-workspace install/list/remove/download,
the org allowlist, github:// failures and traversal attempts. Files land in the host-directory store
of the ``none`` backend (the same store the local backend uses)."""

from __future__ import annotations

import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from activity.models import StructureEvent
from molecule_site.tests.api_client import call
from molecule_site.tests.backends import use_backend
from plugins_app.models import OrgPluginAllowlist
from registry.tests.a2a_server import closed_port_url
from registry.tokens import token_mint
from workspaces.filestores import host_root_dir
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners.docker import DockerProvisioner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

SHIPPED = Path(django_settings.BASE_DIR) / "plugins"


@pytest.fixture(autouse=True)
def _home(secure, settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"
    settings.PLUGINS_DIR = SHIPPED


@pytest.fixture
def org():
    root = Workspace.objects.create(name="Org", status=WorkspaceStatus.ONLINE, runtime="echo")
    return root


@pytest.fixture
def dev(org):
    ws = Workspace.objects.create(name="Dev", parent=org, status=WorkspaceStatus.ONLINE, runtime="openai")
    _, ws.token = token_mint(workspace=ws)
    return ws


def configs(ws) -> Path:
    return host_root_dir(ws.id)


# --- the registry ------------------------------------------------------------------------------------

def test_registry_lists_the_shipped_plugins_with_their_manifest_fields(client):
    response = client.get("/plugins")
    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()}
    assert {"shared-coding-rules", "code-review", "incident-runbook"} <= set(by_name)
    review = by_name["code-review"]
    assert review == {"name": "code-review", "version": "1.2.0", "description": review["description"],
                      "author": "Molecule", "tags": ["engineering", "review", "skill"], "skills": ["code-review"],
                      "runtimes": ["*"]}
    assert "supported_on_runtime" not in review


def test_registry_filtered_by_runtime_says_what_is_supported(client):
    entries = {p["name"]: p for p in client.get("/plugins?runtime=autogen").json()}
    assert entries["incident-runbook"]["supported_on_runtime"] is False  # langgraph, openai, claude-code, echo
    assert entries["code-review"]["supported_on_runtime"] is True
    echo = {p["name"]: p for p in client.get("/plugins?runtime=echo").json()}
    assert echo["incident-runbook"]["supported_on_runtime"] is True


def test_registry_skips_bad_folder_names_and_reads_broken_manifests_as_defaults(client, settings, tmp_path):
    registry_dir = tmp_path / "registry"
    (registry_dir / "Bad Name").mkdir(parents=True)
    (registry_dir / "broken").mkdir()
    (registry_dir / "broken" / "plugin.yaml").write_text("name: [unclosed")
    (registry_dir / "broken" / "skills" / "s1").mkdir(parents=True)
    (registry_dir / "broken" / "skills" / "s1" / "SKILL.md").write_text("---\nname: s1\n---\nbody")
    (registry_dir / "escape").symlink_to(tmp_path)  # a link out of the registry is not a plugin
    settings.PLUGINS_DIR = registry_dir
    assert client.get("/plugins").json() == [
        {"name": "broken", "version": "0.0.0", "description": "", "author": "", "tags": [], "skills": ["s1"],
         "runtimes": []},
    ]


def test_sources_lists_the_schemes(client):
    assert client.get("/plugins/sources").json() == {"schemes": ["github", "local"]}


# --- install, list, remove ---------------------------------------------------------------------------------

def test_install_from_local_writes_the_plugin_into_configs_and_lists_it(client, dev):
    response = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "installed", "plugin": "code-review", "version": "1.2.0",
                               "source": "local://code-review", "files": 4, "restarting": True,
                               "supported_on_runtime": True}
    folder = configs(dev) / "plugins" / "code-review"
    assert (folder / "skills" / "code-review" / "SKILL.md").read_text() == (
        SHIPPED / "code-review" / "skills" / "code-review" / "SKILL.md").read_text()
    assert (folder / "skills" / "code-review" / "scripts" / "diff_stats.py").is_file()
    installed = call(client, "get", f"/workspaces/{dev.id}/plugins").json()
    assert [(p["name"], p["version"], p["skills"], p["supported_on_runtime"]) for p in installed] == [
        ("code-review", "1.2.0", ["code-review"], True)]
    event = StructureEvent.objects.get(event_type="PLUGIN_INSTALLED")
    assert event.workspace_id == dev.id and event.payload["plugin"] == "code-review"


def test_a_workspace_token_installs_into_its_own_workspace_only(client, dev, org):
    own = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://shared-coding-rules"}, token=dev.token)
    assert own.status_code == 200
    other = call(client, "post", f"/workspaces/{org.id}/plugins", {"source": "local://shared-coding-rules"},
                 token=dev.token)
    assert other.status_code == 401 and other.json() == {"error": "invalid workspace auth token"}
    assert not (configs(org) / "plugins").exists()


def test_reinstall_replaces_the_earlier_copy(client, dev):
    call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    stale = configs(dev) / "plugins" / "code-review" / "stale.md"
    stale.write_text("left over")
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"}).status_code == 200
    assert not stale.exists()


def test_available_lists_supported_registry_plugins_marking_the_installed_ones(client, org):
    call(client, "post", f"/workspaces/{org.id}/plugins", {"source": "local://code-review"})
    available = {p["name"]: p["installed"] for p in call(client, "get", f"/workspaces/{org.id}/plugins/available").json()}
    assert available["code-review"] is True and available["shared-coding-rules"] is False
    assert "incident-runbook" in available  # echo is one of its runtimes


def test_compatibility_needs_a_runtime_and_names_the_incompatible_plugins(client, dev):
    response = call(client, "get", f"/workspaces/{dev.id}/plugins/compatibility")
    assert response.status_code == 400 and response.content == b'{"error":"runtime query parameter is required"}'
    call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://incident-runbook"})
    call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    body = call(client, "get", f"/workspaces/{dev.id}/plugins/compatibility?runtime=autogen").json()
    assert body["runtime"] == "autogen" and body["compatible"] is False and body["incompatible"] == ["incident-runbook"]
    assert call(client, "get", f"/workspaces/{dev.id}/plugins/compatibility?runtime=echo").json()["compatible"] is True


def test_uninstall_removes_the_folder_and_unknown_plugins_are_404(client, dev):
    call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    response = call(client, "delete", f"/workspaces/{dev.id}/plugins/code-review")
    assert response.status_code == 200 and response.json()["status"] == "uninstalled"
    assert not (configs(dev) / "plugins" / "code-review").exists()
    assert call(client, "get", f"/workspaces/{dev.id}/plugins").json() == []
    again = call(client, "delete", f"/workspaces/{dev.id}/plugins/code-review")
    assert again.status_code == 404 and again.json() == {"error": "plugin 'code-review' is not installed"}
    assert StructureEvent.objects.filter(event_type="PLUGIN_UNINSTALLED").count() == 1


# --- a Docker workspace whose engine cannot be reached -------------------------------------------------------

DOCKER_DOWN = b'{"error":"Docker not available"}'


@pytest.fixture
def docker_down(monkeypatch):
    """The Docker backend with DOCKER_HOST at a socket that does not exist: every file store call fails."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return use_backend(monkeypatch, DockerProvisioner())


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "plugins", None),
    ("post", "plugins", {"source": "local://code-review"}),
    ("delete", "plugins/code-review", None),
    ("get", "plugins/available", None),
    ("get", "plugins/compatibility?runtime=echo", None),
    ("get", "plugins/code-review/download", None),
])
def test_plugin_routes_answer_503_while_the_docker_engine_is_unreachable(client, dev, docker_down, method, path, body):
    response = call(client, method, f"/workspaces/{dev.id}/{path}", body)
    assert (response.status_code, response.content) == (503, DOCKER_DOWN)
    assert not StructureEvent.objects.filter(event_type__startswith="PLUGIN_").exists()  # nothing announced
    assert not configs(dev).exists()  # nor written to the host instead


def test_with_docker_unreachable_bad_input_and_unknown_workspaces_still_answer_first(client, dev, docker_down):
    assert call(client, "delete", f"/workspaces/{dev.id}/plugins/Bad.Name").status_code == 400
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "ftp://x"}).status_code == 400
    unknown = call(client, "get", "/workspaces/6f1c2f3e-0000-4000-8000-000000000000/plugins")
    assert unknown.status_code == 404


def test_the_host_directory_store_still_lists_nothing_installed_as_an_empty_list(client, dev):
    response = call(client, "get", f"/workspaces/{dev.id}/plugins")
    assert (response.status_code, response.content) == (200, b"[]")


def test_bad_sources_are_refused(client, dev):
    cases = {
        None: "source must be <scheme>://<spec> with scheme one of: github, local",
        42: "source must be <scheme>://<spec> with scheme one of: github, local",
        "code-review": "source must be <scheme>://<spec> with scheme one of: github, local",
        "ftp://x": "unknown plugin source scheme 'ftp'; known: github, local",
        "local://nope-not-here": "plugin 'nope-not-here' not found in the registry",
    }
    for source, error in cases.items():
        response = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": source})
        assert response.json() == {"error": error}, source
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", ["x"]).status_code == 400
    unknown = call(client, "post", "/workspaces/00000000-0000-0000-0000-000000000000/plugins",
                    {"source": "local://code-review"})
    assert unknown.status_code == 404


@pytest.mark.parametrize("source", [
    "local://../secrets_app", "local://..", "local://code-review/../../etc", "local:///etc/passwd",
    "local://%2e%2e", "local://Code-Review", "local://a\\b", "github://owner/../repo#v1", "github://../..#v1",
])
def test_traversal_in_sources_is_refused_before_anything_is_read(client, dev, source):
    response = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": source})
    assert response.status_code == 400, (source, response.content)
    assert not (configs(dev) / "plugins").exists()


@pytest.mark.parametrize("name", ["..", "..%2F..%2Fconfig.yaml", "Code-Review", "a.b"])
def test_traversal_in_plugin_names_of_routes_is_refused(client, dev, name):
    (configs(dev)).mkdir(parents=True)
    (configs(dev) / "config.yaml").write_text("name: Dev\n")
    for method, path in (("delete", f"/workspaces/{dev.id}/plugins/{name}"),
                         ("get", f"/workspaces/{dev.id}/plugins/{name}/download")):
        response = call(client, method, path)
        assert response.status_code in (400, 404), (method, name, response.status_code)
    assert (configs(dev) / "config.yaml").read_text() == "name: Dev\n"


def test_a_plugin_file_linking_out_of_the_registry_is_not_copied(client, dev, settings, tmp_path):
    registry_dir = tmp_path / "registry"
    plugin = registry_dir / "leaky"
    plugin.mkdir(parents=True)
    (plugin / "plugin.yaml").write_text("name: leaky\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (plugin / "rules").mkdir()
    (plugin / "rules" / "steal.md").symlink_to(secret)
    settings.PLUGINS_DIR = registry_dir
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://leaky"}).status_code == 200
    installed = configs(dev) / "plugins" / "leaky"
    assert (installed / "plugin.yaml").is_file() and not (installed / "rules" / "steal.md").exists()


# --- github:// ---------------------------------------------------------------------------------------------

def test_github_sources_must_be_pinned(client, dev):
    response = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "github://acme/review-kit"})
    assert response.status_code == 400
    assert response.json() == {"error": "github source must be pinned to a ref: github://owner/repo#ref"}


def test_github_install_without_network_fails_clearly_with_502(client, dev, settings):
    settings.PLUGIN_GITHUB_URL = closed_port_url()
    response = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "github://acme/review-kit#v1.0"})
    assert response.status_code == 502
    assert response.json() == {"error": "failed to fetch github://acme/review-kit#v1.0: ConnectError"}
    assert not (configs(dev) / "plugins").exists()


def _tarball(files: dict[str, bytes], top="review-kit-1.0") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{top}/evil-link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        escape = tarfile.TarInfo(f"{top}/../../escape.md")
        escape.size = 1
        archive.addfile(escape, io.BytesIO(b"x"))
    return buffer.getvalue()


class _Tarballs(BaseHTTPRequestHandler):
    body = b""
    paths: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).paths.append(self.path)
        status = 200 if self.path == "/acme/review-kit/tar.gz/v1.0" else 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(self.body) if status == 200 else 0))
        self.end_headers()
        if status == 200:
            self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_github_install_from_a_tarball_server_keeps_only_safe_regular_files(client, dev, settings):
    _Tarballs.body = _tarball({"plugin.yaml": b"name: review-kit\nversion: 1.0.0\n", "rules/r.md": b"Be kind."})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tarballs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.PLUGIN_GITHUB_URL = f"http://127.0.0.1:{server.server_port}"
        ok = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "github://acme/review-kit#v1.0"})
        missing = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "github://acme/review-kit#v9"})
    finally:
        server.shutdown()
    assert ok.status_code == 200 and ok.json()["plugin"] == "review-kit" and ok.json()["version"] == "1.0.0"
    folder = configs(dev) / "plugins" / "review-kit"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "plugin.yaml", "rules/r.md"]
    assert missing.status_code == 502 and missing.json() == {"error": "failed to fetch github://acme/review-kit#v9: HTTP 404"}


# --- the allowlist -------------------------------------------------------------------------------------------

def test_allowlist_refuses_an_unlisted_plugin_for_the_whole_org(client, org, dev):
    response = call(client, "put", f"/orgs/{org.id}/plugins/allowlist", {"plugins": ["shared-coding-rules"]})
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["plugins"]] == ["shared-coding-rules"]
    assert response.json()["restricted"] is True
    refused = call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    assert refused.status_code == 403
    assert refused.json() == {"error": "plugin 'code-review' is not in the org plugin allowlist"}
    assert not (configs(dev) / "plugins").exists()
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://shared-coding-rules"}).status_code == 200
    assert [p["name"] for p in call(client, "get", f"/workspaces/{dev.id}/plugins/available").json()] == [
        "shared-coding-rules"]
    cleared = call(client, "put", f"/orgs/{org.id}/plugins/allowlist", {"plugins": []})
    assert cleared.json()["restricted"] is False and not OrgPluginAllowlist.objects.exists()
    assert call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"}).status_code == 200


def test_allowlist_is_admin_only_and_kept_on_org_roots(client, org, dev):
    as_workspace = call(client, "put", f"/orgs/{org.id}/plugins/allowlist", {"plugins": []}, token=dev.token)
    assert as_workspace.status_code == 401
    not_root = call(client, "put", f"/orgs/{dev.id}/plugins/allowlist", {"plugins": ["x"]})
    assert not_root.status_code == 400
    for bad in ({"plugins": "x"}, {"plugins": [1]}, {"plugins": ["../x"]}, {}):
        assert call(client, "put", f"/orgs/{org.id}/plugins/allowlist", bad).status_code == 400, bad
    assert call(client, "get", "/orgs/not-a-uuid/plugins/allowlist").status_code == 404


# --- download -----------------------------------------------------------------------------------------------

def test_download_is_a_tar_gz_of_the_installed_copy_else_the_registry(client, dev):
    from_registry = call(client, "get", f"/workspaces/{dev.id}/plugins/code-review/download")
    assert from_registry.status_code == 200 and from_registry["Content-Type"] == "application/gzip"
    assert from_registry["Content-Disposition"] == 'attachment; filename="code-review.tar.gz"'
    call(client, "post", f"/workspaces/{dev.id}/plugins", {"source": "local://code-review"})
    extra = configs(dev) / "plugins" / "code-review" / "local-note.md"
    extra.write_text("added in the workspace")
    installed = call(client, "get", f"/workspaces/{dev.id}/plugins/code-review/download")
    with tarfile.open(fileobj=io.BytesIO(installed.content), mode="r:gz") as archive:
        names = sorted(archive.getnames())
        note = archive.extractfile("code-review/local-note.md").read()
    assert names == ["code-review/local-note.md", "code-review/plugin.yaml", "code-review/review-guidelines.md",
                     "code-review/skills/code-review/SKILL.md", "code-review/skills/code-review/scripts/diff_stats.py"]
    assert note == b"added in the workspace"
    missing = call(client, "get", f"/workspaces/{dev.id}/plugins/nope/download")
    assert missing.status_code == 404 and missing.json() == {"error": "plugin 'nope' not found"}
