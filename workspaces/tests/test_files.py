"""The file store and the Files API services (spec §14): host-directory store, template fallback,
path safety, limits, shared context."""

import os
from pathlib import Path

import pytest
import yaml

from molecule_site.errors import ApiError
from molecule_site.tests.backends import use_backend
from workspaces import files, filestores
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def home(settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"
    return settings.MOLECULE_HOME


@pytest.fixture
def configs(settings, tmp_path):
    directory = tmp_path / "configs"
    template = directory / "researcher"
    (template / "skills" / "web" / "scripts").mkdir(parents=True)
    (template / "config.yaml").write_text("name: Researcher\nshared_context: [brief.md, ../secret, missing.md]\n")
    (template / "system-prompt.md").write_text("You research.")
    (template / "brief.md").write_text("The brief.")
    (template / "skills" / "web" / "SKILL.md").write_text("---\nname: web\n---\nSearch.")
    (template / "skills" / "web" / "scripts" / "search.py").write_text("print(1)")
    settings.CONFIGS_DIR = directory
    return directory


@pytest.fixture
def workspace(home):
    return Workspace.objects.create(name="Researcher", tier=2)


@pytest.fixture
def orphan(home):
    """A workspace no template matches."""
    return Workspace.objects.create(name="Nobody Matches")


def own(workspace, root="/configs") -> Path:
    return filestores.host_root_dir(workspace.id, root)


def put(workspace, path, content, root="/configs"):
    target = own(workspace, root) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return target


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.body


def paths(entries):
    return [(e["path"], e["dir"]) for e in entries]


# --- layout -----------------------------------------------------------------------------------------

def test_each_root_is_its_own_directory_under_molecule_home(workspace, home):
    for root, name in [("/configs", "configs"), ("/workspace", "workspace"), ("/home", "home"), ("/plugins", "plugins")]:
        assert filestores.host_root_dir(workspace.id, root) == Path(home) / "workspaces" / str(workspace.id) / name


def test_store_for_uses_the_host_store_unless_the_backend_brings_its_own(workspace, monkeypatch):
    assert isinstance(files.store_for(workspace), filestores.HostDirectoryStore)

    class Custom(filestores.HostDirectoryStore):
        source = "container"

    class Backend:
        def file_store(self, ws):
            return Custom(ws.id)

    use_backend(monkeypatch, Backend())
    assert files.store_for(workspace).source == "container"


# --- list ---------------------------------------------------------------------------------------------

def test_list_own_files_respects_depth_and_skips_noise(workspace, configs):
    put(workspace, "config.yaml", "name: R\n")
    put(workspace, "skills/a/SKILL.md", "x")
    put(workspace, "skills/a/scripts/deep/er/est.py", "x")
    for noise in (".git/HEAD", "__pycache__/m.pyc", "node_modules/x/index.js", ".DS_Store", "skills/a/.DS_Store"):
        put(workspace, noise, "x")
    put(workspace, ".auth_token", "tok")
    assert paths(files.files_list(workspace_id=workspace.id, root=None, path=None, depth=1)) == [
        (".auth_token", False), ("config.yaml", False), ("skills", True),
    ]
    assert paths(files.files_list(workspace_id=workspace.id, root="/configs", path="", depth=3)) == [
        (".auth_token", False), ("config.yaml", False), ("skills", True), ("skills/a", True),
        ("skills/a/SKILL.md", False), ("skills/a/scripts", True),
    ]
    deep = paths(files.files_list(workspace_id=workspace.id, root="/configs", path="skills", depth=5))
    assert ("skills/a/scripts/deep/er/est.py", False) in deep


def test_list_entries_carry_size_and_paths_relative_to_the_root(workspace):
    put(workspace, "skills/a/SKILL.md", "12345")
    assert files.files_list(workspace_id=workspace.id, root="/configs", path="skills/a", depth=1) == [
        {"path": "skills/a/SKILL.md", "size": 5, "dir": False},
    ]


def test_list_other_roots_read_their_own_directory(workspace, configs):
    put(workspace, "notes.txt", "n", root="/workspace")
    assert paths(files.files_list(workspace_id=workspace.id, root="/workspace", path=None, depth=1)) == [("notes.txt", False)]
    # no template fallback outside /configs
    assert files.files_list(workspace_id=workspace.id, root="/home", path=None, depth=1) == []


def test_list_falls_back_to_the_template_while_the_workspace_has_no_configs(workspace, configs):
    assert paths(files.files_list(workspace_id=workspace.id, root="/configs", path=None, depth=2)) == [
        ("brief.md", False), ("config.yaml", False), ("skills", True), ("skills/web", True), ("system-prompt.md", False),
    ]


def test_list_without_files_or_template_is_empty(orphan, configs):
    assert files.files_list(workspace_id=orphan.id, root="/configs", path=None, depth=1) == []


def test_list_skips_symlinks_leading_outside(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    put(workspace, "ok.md", "x")
    os.symlink(outside, own(workspace) / "escape-dir")
    os.symlink(outside / "passwd", own(workspace) / "escape-file")
    os.symlink(own(workspace) / "ok.md", own(workspace) / "inside-link")
    assert paths(files.files_list(workspace_id=workspace.id, root="/configs", path=None, depth=5)) == [
        ("inside-link", False), ("ok.md", False),
    ]
    assert error_of(lambda: files.files_list(workspace_id=workspace.id, root="/configs", path="escape-dir", depth=1)) == (
        400, {"error": "invalid path"},
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"root": "/etc"}, "root must be one of: /configs, /workspace, /home, /plugins"),
        ({"root": "configs"}, "root must be one of: /configs, /workspace, /home, /plugins"),
        ({"depth": 0}, "depth must be 1-5"),
        ({"depth": 6}, "depth must be 1-5"),
        ({"depth": None}, "depth must be 1-5"),
        ({"path": "../.."}, "invalid path"),
        ({"path": "/etc"}, "invalid path"),
        ({"path": "..%2F"}, "invalid path"),
    ],
)
def test_list_validates_its_parameters_before_the_workspace(kwargs, error):
    call = {"workspace_id": "not-even-a-uuid", "root": None, "path": None, "depth": 1} | kwargs
    assert error_of(lambda: files.files_list(**call)) == (400, {"error": error})


def test_list_unknown_workspace(home):
    assert error_of(lambda: files.files_list(workspace_id="6f1c2f3e-0000-4000-8000-000000000000", root=None, path=None,
                                             depth=1)) == (404, {"error": "workspace not found"})


# --- read ------------------------------------------------------------------------------------------------

def test_read_own_file(workspace, configs):
    put(workspace, "system-prompt.md", "mine")
    assert files.file_read(workspace_id=workspace.id, root=None, path="system-prompt.md") == {
        "path": "system-prompt.md", "content": "mine", "size": 4,
    }
    assert error_of(lambda: files.file_read(workspace_id=workspace.id, root=None, path="brief.md")) == (
        404, {"error": "file not found"},
    )  # own files exist: the template is not consulted


def test_read_falls_back_to_the_template(workspace, configs):
    assert files.file_read(workspace_id=workspace.id, root="/configs", path="skills/web/SKILL.md")["content"] == (
        "---\nname: web\n---\nSearch."
    )
    assert error_of(lambda: files.file_read(workspace_id=workspace.id, root=None, path="nope.md")) == (
        404, {"error": "file not found"},
    )


def test_read_without_files_or_template(orphan, configs):
    assert error_of(lambda: files.file_read(workspace_id=orphan.id, root=None, path="config.yaml")) == (
        404, {"error": "file not found (container offline, no template)"},
    )


def test_read_other_root_and_directories(workspace):
    put(workspace, "dir/a.txt", "a", root="/home")
    assert files.file_read(workspace_id=workspace.id, root="/home", path="dir/a.txt")["content"] == "a"
    assert error_of(lambda: files.file_read(workspace_id=workspace.id, root="/home", path="dir")) == (
        404, {"error": "file not found"},
    )


def test_read_reports_bytes_and_replaces_invalid_utf8(workspace):
    target = own(workspace) / "bin.dat"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\xff\xfeh\xc3\xa9")
    assert files.file_read(workspace_id=workspace.id, root=None, path="bin.dat") == {
        "path": "bin.dat", "content": "\ufffd\ufffdhé", "size": 5,
    }


def test_read_is_capped(workspace):
    target = own(workspace) / "huge.log"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * (files.MAX_FILE_BYTES + 1))
    assert error_of(lambda: files.file_read(workspace_id=workspace.id, root=None, path="huge.log")) == (
        413, {"error": "file too large", "path": "huge.log", "max_bytes": 1048576},
    )


def test_read_refuses_symlink_escape(workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cr3t")
    put(workspace, "ok.md", "x")
    os.symlink(tmp_path / "secret.txt", own(workspace) / "link.md")
    os.symlink(tmp_path, own(workspace) / "linkdir")
    for path in ("link.md", "linkdir/secret.txt"):
        assert error_of(lambda p=path: files.file_read(workspace_id=workspace.id, root=None, path=p)) == (
            400, {"error": "invalid path"},
        )


def test_read_refuses_template_symlink_escape(workspace, configs, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cr3t")
    os.symlink(tmp_path / "secret.txt", configs / "researcher" / "leak.md")
    assert error_of(lambda: files.file_read(workspace_id=workspace.id, root=None, path="leak.md")) == (
        400, {"error": "invalid path"},
    )


# --- write -----------------------------------------------------------------------------------------------

def test_first_write_copies_the_template_then_writes(workspace, configs):
    assert files.file_write(workspace_id=workspace.id, path="system-prompt.md", content="edited") == {
        "status": "saved", "path": "system-prompt.md",
    }
    assert (own(workspace) / "system-prompt.md").read_text() == "edited"
    assert (own(workspace) / "skills" / "web" / "scripts" / "search.py").read_text() == "print(1)"
    assert (configs / "researcher" / "system-prompt.md").read_text() == "You research."  # template untouched
    listed = paths(files.files_list(workspace_id=workspace.id, root=None, path=None, depth=1))
    assert listed == [("brief.md", False), ("config.yaml", False), ("skills", True), ("system-prompt.md", False)]


def test_write_without_template_creates_the_file_alone(orphan, configs):
    files.file_write(workspace_id=orphan.id, path="notes/a.md", content="")
    assert (own(orphan) / "notes" / "a.md").read_text() == ""
    assert paths(files.files_list(workspace_id=orphan.id, root=None, path=None, depth=2)) == [
        ("notes", True), ("notes/a.md", False),
    ]


def test_write_leaves_no_temporary_files(orphan):
    files.file_write(workspace_id=orphan.id, path="a.md", content="1")
    files.file_write(workspace_id=orphan.id, path="a.md", content="2")
    assert sorted(p.name for p in own(orphan).iterdir()) == ["a.md"]
    assert (own(orphan) / "a.md").read_text() == "2"


@pytest.mark.parametrize("path", ["../evil.md", "/etc/x", "a/../../evil.md", "..%2Fevil.md", ".", ""])
def test_write_refuses_unsafe_paths(orphan, tmp_path, path):
    assert error_of(lambda: files.file_write(workspace_id=orphan.id, path=path, content="x")) == (
        400, {"error": "invalid path"},
    )
    assert not own(orphan).exists()


def test_write_refuses_symlink_escape(orphan, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("original")
    put(orphan, "ok.md", "x")
    os.symlink(outside, own(orphan) / "linkdir")
    os.symlink(outside / "victim.txt", own(orphan) / "victim.txt")
    for path in ("linkdir/new.txt", "linkdir/victim.txt", "victim.txt"):
        assert error_of(lambda p=path: files.file_write(workspace_id=orphan.id, path=p, content="pwned")) == (
            400, {"error": "invalid path"},
        )
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == "original"


def test_write_is_capped(orphan):
    big = "x" * (files.MAX_FILE_BYTES + 1)
    assert error_of(lambda: files.file_write(workspace_id=orphan.id, path="big.md", content=big)) == (
        413, {"error": "file too large", "path": "big.md", "max_bytes": 1048576},
    )
    files.file_write(workspace_id=orphan.id, path="max.md", content="x" * files.MAX_FILE_BYTES)


def test_write_onto_a_directory_fails_without_revealing_host_paths(orphan):
    put(orphan, "dir/a.md", "x")
    status, body = error_of(lambda: files.file_write(workspace_id=orphan.id, path="dir", content="x"))
    assert (status, body) == (500, {"error": "failed to write file: Is a directory"})


def test_write_refuses_non_text_content(orphan):
    assert error_of(lambda: files.file_write(workspace_id=orphan.id, path="a.md", content=5)) == (
        400, {"error": "invalid request body"},
    )


# --- replace set ----------------------------------------------------------------------------------------

def test_replace_merges_into_the_seeded_configs(workspace, configs):
    body = files.files_replace(workspace_id=workspace.id, files={"system-prompt.md": "new", "extra/x.md": "x"})
    assert body == {"status": "replaced", "workspace": str(workspace.id), "files": 2, "source": "host"}
    assert (own(workspace) / "system-prompt.md").read_text() == "new"
    assert (own(workspace) / "brief.md").read_text() == "The brief."
    assert (own(workspace) / "config.yaml").read_text().startswith("name: Researcher")


def test_replace_generates_config_yaml_when_none_exists(home):
    workspace = Workspace.objects.create(name="Solo", role="Writes", tier=3, runtime="claude-code")
    files.files_replace(workspace_id=workspace.id, files={"system-prompt.md": "p"})
    config = yaml.safe_load((own(workspace) / "config.yaml").read_text())
    assert config == {
        "name": "Solo", "description": "Writes", "version": "1.0.0", "tier": 3, "runtime": "claude-code",
        "model": "sonnet", "runtime_config": {"timeout": 0},
    }


def test_replace_limits(orphan):
    assert error_of(lambda: files.files_replace(workspace_id=orphan.id, files={f"{i}.md": "x" for i in range(201)})) == (
        400, {"error": "too many files (201), max 200"},
    )
    assert error_of(lambda: files.files_replace(workspace_id=orphan.id, files={"ok.md": "x", "../x.md": "y"})) == (
        400, {"error": "invalid path"},
    )
    assert error_of(lambda: files.files_replace(workspace_id=orphan.id, files=["a"])) == (
        400, {"error": "invalid request body"},
    )
    assert not own(orphan).exists()  # nothing written by a refused set
    assert files.files_replace(workspace_id=orphan.id, files={f"{i}.md": "x" for i in range(200)})["files"] == 200


# --- delete -----------------------------------------------------------------------------------------------

def test_delete_file_directory_and_missing(orphan):
    put(orphan, "a.md", "x")
    put(orphan, "dir/b/c.md", "x")
    assert files.file_delete(workspace_id=orphan.id, path="a.md") == {"status": "deleted", "path": "a.md"}
    assert files.file_delete(workspace_id=orphan.id, path="dir")["status"] == "deleted"
    assert files.file_delete(workspace_id=orphan.id, path="never-there.md")["status"] == "deleted"
    assert list(own(orphan).iterdir()) == []


def test_delete_removes_a_symlink_not_its_target(orphan, tmp_path):
    (tmp_path / "keep.txt").write_text("keep")
    put(orphan, "ok.md", "x")
    os.symlink(tmp_path / "keep.txt", own(orphan) / "link")
    os.symlink(tmp_path, own(orphan) / "linkdir")
    files.file_delete(workspace_id=orphan.id, path="link")
    files.file_delete(workspace_id=orphan.id, path="linkdir")
    assert (tmp_path / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in own(orphan).iterdir()) == ["ok.md"]


def test_delete_refuses_escape_through_a_symlinked_directory(orphan, tmp_path):
    (tmp_path / "keep.txt").write_text("keep")
    put(orphan, "ok.md", "x")
    os.symlink(tmp_path, own(orphan) / "linkdir")
    assert error_of(lambda: files.file_delete(workspace_id=orphan.id, path="linkdir/keep.txt")) == (
        400, {"error": "invalid path"},
    )
    assert (tmp_path / "keep.txt").exists()


def test_clearing_every_file_does_not_bring_the_template_back(workspace, configs):
    for entry in files.files_list(workspace_id=workspace.id, root=None, path=None, depth=1):
        files.file_delete(workspace_id=workspace.id, path=entry["path"])
    assert files.files_list(workspace_id=workspace.id, root=None, path=None, depth=1) == []
    assert (configs / "researcher" / "config.yaml").exists()


# --- shared context -------------------------------------------------------------------------------------

def test_shared_context_reads_listed_files_and_skips_bad_entries(workspace, configs):
    assert files.shared_context(workspace_id=workspace.id) == [{"path": "brief.md", "content": "The brief."}]


def test_shared_context_prefers_own_files(workspace, configs):
    put(workspace, "config.yaml", "name: R\nshared_context:\n  - docs/a.md\n  - 5\n")
    put(workspace, "docs/a.md", "A")
    assert files.shared_context(workspace_id=workspace.id) == [{"path": "docs/a.md", "content": "A"}]


def test_shared_context_empty_cases(orphan, workspace, configs):
    assert files.shared_context(workspace_id=orphan.id) == []
    put(workspace, "config.yaml", "name: R\n")
    assert files.shared_context(workspace_id=workspace.id) == []
    put(workspace, "config.yaml", "{broken")
    assert files.shared_context(workspace_id=workspace.id) == []
    assert error_of(lambda: files.shared_context(workspace_id="nope")) == (404, {"error": "workspace not found"})
