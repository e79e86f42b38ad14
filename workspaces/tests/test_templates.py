"""Template discovery, listing, import and resolution (spec §14, §5.1), and the shipped examples."""

from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from molecule_site.errors import ApiError
from workspaces import templates
from workspaces.models import Workspace, WorkspaceConfig

SHIPPED = Path(django_settings.BASE_DIR) / "workspace-configs-templates"


@pytest.fixture
def configs(settings, tmp_path):
    directory = tmp_path / "configs"
    directory.mkdir()
    settings.CONFIGS_DIR = directory
    return directory


def make_template(configs: Path, name: str, config: str, **files: str) -> Path:
    directory = configs / name
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(config)
    for path, content in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(content)
    return directory


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.body


# --- shipped examples --------------------------------------------------------------------------------

def test_every_runtime_ships_a_default_template(settings):
    """`<runtime>-default` for each adapter of the runtime package: the palette and
    `POST /workspaces {"template": "<runtime>-default"}` can deploy any runtime."""
    from workspaces.provisioners.docker import known_runtimes

    settings.CONFIGS_DIR = SHIPPED
    defaults = {item["id"]: item for item in templates.template_list() if item["id"].endswith("-default")}
    assert set(defaults) == {f"{runtime}-default" for runtime in known_runtimes()}
    assert {"claude-code-default", "crewai-default", "google-adk-default", "cli-default"} <= set(defaults)
    for template_id, item in defaults.items():
        assert item["runtime"] == template_id.removesuffix("-default")
        assert (SHIPPED / template_id / "system-prompt.md").read_text().strip()
    assert "required_env" not in defaults["echo-default"]
    assert defaults["crewai-default"]["required_env"] == ["OPENAI_API_KEY"]


def test_shipped_templates_are_two_teams(settings):
    settings.CONFIGS_DIR = SHIPPED
    items = {item["id"]: item for item in templates.template_list() if not item["id"].endswith("-default")}
    assert set(items) == {"team-lead", "researcher", "demo-pm", "demo-specialist"}
    assert (items["demo-pm"]["runtime"], items["demo-specialist"]["runtime"]) == ("echo", "echo")
    assert "required_env" not in items["demo-pm"]  # deployable on a fresh install without keys
    assert items["team-lead"] == {
        "id": "team-lead", "name": "Team Lead",
        "description": "Coordinates a team of specialists, delegates every task and synthesises their answers.",
        "tier": 2, "runtime": "langgraph", "model": "anthropic:claude-opus-4-7",
        "required_env": ["ANTHROPIC_API_KEY"], "skills": ["delegate-and-synthesise"], "skill_count": 1,
        "provision_timeout_seconds": 300,
    }
    researcher = items["researcher"]
    assert researcher["skills"] == ["web-research"]
    assert [m["id"] for m in researcher["models"]] == ["anthropic:claude-opus-4-7", "openai:gpt-4.1-mini"]


@pytest.mark.parametrize("template", ["team-lead", "researcher"])
def test_shipped_template_files_exist_for_everything_the_config_names(template):
    directory = SHIPPED / template
    config = yaml.safe_load((directory / "config.yaml").read_text())
    for key in ("name", "description", "version", "tier", "runtime", "model"):
        assert config[key], key
    for prompt in config.get("prompt_files", ["system-prompt.md"]):
        assert (directory / prompt).is_file()
    for skill in config["skills"]:
        skill_md = (directory / "skills" / skill / "SKILL.md").read_text()
        front = yaml.safe_load(skill_md.split("---", 2)[1])
        assert front["name"] == skill and front["description"]
    for shared in config.get("shared_context", []):
        assert (directory / shared).is_file()
    for sub in config.get("sub_workspaces", []):
        assert (SHIPPED / sub["config"] / "config.yaml").is_file(), sub


def test_team_lead_lists_specialists_as_sub_workspaces():
    config = yaml.safe_load((SHIPPED / "team-lead" / "config.yaml").read_text())
    assert [entry["config"] for entry in config["sub_workspaces"]] == ["researcher", "researcher"]
    assert all((SHIPPED / entry["config"] / "config.yaml").is_file() for entry in config["sub_workspaces"])
    assert config["shared_context"] == ["team-brief.md"]


# --- listing --------------------------------------------------------------------------------------

def test_list_takes_model_from_runtime_config_and_omits_empty_optionals(configs):
    make_template(configs, "coder", "name: Coder\nruntime: claude-code\nruntime_config:\n  model: sonnet\n")
    assert templates.template_list() == [{
        "id": "coder", "name": "Coder", "description": "", "tier": 0, "runtime": "claude-code",
        "model": "sonnet", "skills": [], "skill_count": 0,
    }]


def test_list_merges_required_env_from_runtime_config_and_env_block(configs):
    make_template(
        configs, "a",
        "name: A\nruntime_config:\n  required_env: [X_KEY]\nenv:\n  required: [Y_KEY, X_KEY]\nskills: [s1, s2]\n",
    )
    item = templates.template_list()[0]
    assert item["required_env"] == ["X_KEY", "Y_KEY"]
    assert (item["skills"], item["skill_count"]) == (["s1", "s2"], 2)


def test_list_skips_dirs_without_config_hidden_dirs_and_broken_yaml(configs):
    make_template(configs, "good", "name: Good\n")
    make_template(configs, ".hidden", "name: Hidden\n")
    make_template(configs, "broken", "name: [unclosed\n")
    make_template(configs, "scalar", "just a string\n")
    (configs / "empty-dir").mkdir()
    (configs / "loose-file.yaml").write_text("name: x\n")
    assert [item["id"] for item in templates.template_list()] == ["good"]


def test_list_is_empty_when_configs_dir_is_missing(settings, tmp_path):
    settings.CONFIGS_DIR = tmp_path / "nope"
    assert templates.template_list() == []


def test_name_defaults_to_the_directory(configs):
    make_template(configs, "plain", "")
    assert templates.template_list()[0]["name"] == "plain"


# --- rel-path rule and name normalisation -------------------------------------------------------------

@pytest.mark.parametrize("path", ["config.yaml", "skills/a/SKILL.md", "a//b", "./a", "dir/", ".hidden",
                                  "n" * 255, "é" * 127, "/".join(["d" * 200] * 20)])
def test_rel_path_accepts(path):
    assert templates.rel_path_is_valid(path)


@pytest.mark.parametrize(
    "path",
    ["", ".", "./", "/etc/passwd", "../x", "a/../b", "a/..", "..", "a..b", "..%2F..%2Fetc%2Fpasswd",
     "%2e%2e/x", "%2Fetc%2Fpasswd", "a\\..\\b", "nul\x00byte", None, 5,
     "n" * 256, "é" * 128, "dir/" + "n" * 256, "/".join(["d" * 200] * 21)],  # longer than Linux takes
)
def test_rel_path_refuses(path):
    assert not templates.rel_path_is_valid(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("My Agent", "my-agent"),
        ("SEO-Writer v2", "seo-writer-v2"),
        ("snake_case_ok", "snake_case_ok"),
        ("../../etc/passwd", "etcpasswd"),
        ("a..b", "ab"),
        ("Ünïcode!", "ncode"),
        ("", "unnamed"),
        ("!!!", "unnamed"),
        ("..", "unnamed"),
    ],
)
def test_normalize_name(name, expected):
    assert templates.normalize_name(name) == expected


# --- import ---------------------------------------------------------------------------------------

def test_import_writes_files_under_the_normalised_name(configs):
    files = {"config.yaml": "name: My Agent\ntier: 2\n", "system-prompt.md": "hi", "skills/x/SKILL.md": "---\n---\n"}
    assert templates.template_import(name="My Agent", files=files) == {
        "status": "imported", "id": "my-agent", "name": "My Agent",
    }
    assert (configs / "my-agent" / "config.yaml").read_text() == "name: My Agent\ntier: 2\n"
    assert (configs / "my-agent" / "skills" / "x" / "SKILL.md").read_text() == "---\n---\n"
    assert [item["id"] for item in templates.template_list()] == ["my-agent"]
    assert not [p for p in configs.iterdir() if p.name.startswith(".")]  # no staging left


def test_import_generates_a_default_config(configs):
    templates.template_import(name="Helper", files={"system-prompt.md": "hi"})
    config = yaml.safe_load((configs / "helper" / "config.yaml").read_text())
    assert config == {
        "name": "Helper", "description": "", "version": "1.0.0", "tier": 1, "runtime": "langgraph",
        "model": "anthropic:claude-opus-4-7",
    }


def test_import_refuses_an_existing_template(configs):
    make_template(configs, "my-agent", "name: Mine\n")
    assert error_of(lambda: templates.template_import(name="My Agent", files={})) == (
        409, {"error": "template already exists", "id": "my-agent"},
    )
    assert (configs / "my-agent" / "config.yaml").read_text() == "name: Mine\n"


def test_import_refuses_more_than_200_files(configs):
    files = {f"f{i}.md": "x" for i in range(201)}
    assert error_of(lambda: templates.template_import(name="big", files=files)) == (
        400, {"error": "too many files (201), max 200"},
    )
    assert not (configs / "big").exists()


def test_import_accepts_exactly_200_files(configs):
    templates.template_import(name="full", files={f"f{i}.md": "x" for i in range(199)} | {"config.yaml": "name: F\n"})
    assert len(list((configs / "full").iterdir())) == 200


@pytest.mark.parametrize(
    "path", ["../escape.md", "/etc/passwd", "..%2Fescape.md", "%2e%2e%2fescape.md", "a/../../b", ".", ""],
)
def test_import_refuses_unsafe_paths_and_writes_nothing(configs, tmp_path, path):
    files = {"config.yaml": "name: X\n", path: "pwned"}
    assert error_of(lambda: templates.template_import(name="x", files=files)) == (
        400, {"error": "invalid request body"},
    )
    assert list(configs.iterdir()) == []
    assert not (tmp_path / "escape.md").exists()


@pytest.mark.parametrize(
    ("name", "files"),
    [(None, {}), ("", {}), (5, {}), ("x", None), ("x", ["config.yaml"]), ("x", {"a.md": 5}), ("x", {"a": "1", "a/b": "2"})],
)
def test_import_refuses_bad_bodies(configs, name, files):
    assert error_of(lambda: templates.template_import(name=name, files=files)) == (400, {"error": "invalid request body"})
    assert [p for p in configs.iterdir()] == []


def test_import_caps_file_size(configs):
    big = "x" * (templates.MAX_FILE_BYTES + 1)
    status, body = error_of(lambda: templates.template_import(name="x", files={"big.md": big}))
    assert (status, body) == (413, {"error": "file too large", "path": "big.md", "max_bytes": 1048576})
    assert list(configs.iterdir()) == []


def test_import_creates_a_missing_configs_dir(settings, tmp_path):
    settings.CONFIGS_DIR = tmp_path / "new" / "configs"
    templates.template_import(name="x", files={})
    assert (tmp_path / "new" / "configs" / "x" / "config.yaml").is_file()


# --- resolution for a workspace -------------------------------------------------------------------------

@pytest.mark.django_db
def test_template_resolution_order(configs):
    make_template(configs, "recorded", "name: Something\n")
    make_template(configs, "research-bot", "name: Other\n")
    make_template(configs, "zz", "name: Named Bot\n")
    by_recorded = Workspace.objects.create(name="Research Bot")
    WorkspaceConfig.objects.create(workspace=by_recorded, data={"template": "recorded"})
    assert templates.template_dir_for(by_recorded) == configs / "recorded"
    assert templates.template_dir_for(Workspace.objects.create(name="Research Bot")) == configs / "research-bot"
    assert templates.template_dir_for(Workspace.objects.create(name="Named Bot")) == configs / "zz"
    assert templates.template_dir_for(Workspace.objects.create(name="Nobody")) is None



@pytest.mark.django_db
def test_recorded_template_outside_configs_dir_is_ignored(configs, tmp_path):
    make_template(tmp_path, "outside", "name: Outside\n")
    workspace = Workspace.objects.create(name="Nobody")
    WorkspaceConfig.objects.create(workspace=workspace, data={"template": "../outside"})
    assert templates.template_dir_for(workspace) is None


def test_default_config_for_cli_runtimes_sets_timeout_and_sonnet():
    config = yaml.safe_load(templates.default_config_yaml(name="C", description="d", tier=3, runtime="claude-code"))
    assert config == {
        "name": "C", "description": "d", "version": "1.0.0", "tier": 3, "runtime": "claude-code", "model": "sonnet",
        "runtime_config": {"timeout": 0},
    }
