"""Plugins (spec/runtime.md §8.2, read-only subset): discovery, prompt sections, plugin skills."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.adapters.shared_runtime import WorkspaceExtras, build_system_prompt, collect_tools
from molecule_runtime.plugins import discover_plugins, load_plugin, load_plugin_skills, plugin_dirs


def make_plugin(root: Path, folder: str, *, manifest: str | None = None, rules: dict | None = None,
                files: dict | None = None, skill: str | None = None) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    if manifest is not None:
        (path / "plugin.yaml").write_text(textwrap.dedent(manifest))
    for name, text in (rules or {}).items():
        (path / "rules").mkdir(exist_ok=True)
        (path / "rules" / name).write_text(text)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    if skill:
        sdir = path / "skills" / skill
        (sdir / "scripts").mkdir(parents=True)
        (sdir / "SKILL.md").write_text(f"---\nname: {skill.title()}\ndescription: plugin skill\n---\nUse {skill}.\n")
        (sdir / "scripts" / "tool.py").write_text(
            f"async def {skill}_tool(x: str) -> dict:\n    return {{'plugin': '{skill}', 'x': x}}\n")
    return path


def test_discovery_order_and_dedup_per_workspace_wins(tmp_path):
    config = tmp_path / "configs"
    shared = tmp_path / "shared"
    make_plugin(config / "plugins", "beta", files={"guide.md": "workspace beta"})
    make_plugin(shared, "beta", files={"guide.md": "shared beta"})
    make_plugin(shared, "alpha", files={"guide.md": "shared alpha"})
    (shared / "not-a-dir.md").write_text("ignored")
    dirs = plugin_dirs(config, {"PLUGINS_DIR": str(shared)})
    assert dirs == [config / "plugins" / "beta", shared / "alpha"]
    plugins = discover_plugins(config, {"PLUGINS_DIR": str(shared)})
    assert [p.fragments[0][1] for p in plugins] == ["workspace beta", "shared alpha"]


def test_missing_dirs_give_no_plugins(tmp_path):
    assert discover_plugins(tmp_path, {"PLUGINS_DIR": str(tmp_path / "nope")}) == []


def test_manifest_good_bad_and_missing(tmp_path):
    good = load_plugin(make_plugin(tmp_path, "g", manifest="name: Good\nversion: 1.2.0\ndescription: d\n"))
    assert (good.name, good.version, good.description) == ("Good", "1.2.0", "d")
    bad = load_plugin(make_plugin(tmp_path, "b", manifest="name: [unclosed\n"))
    assert (bad.name, bad.version) == ("b", "0.0.0")
    missing = load_plugin(make_plugin(tmp_path, "m"))
    assert missing.name == "m"


def test_rules_sorted_non_empty_and_fragments_skip_readme(tmp_path):
    plugin = load_plugin(make_plugin(
        tmp_path, "p", rules={"b.md": "rule B", "a.md": "rule A", "c.md": "  \n", "x.txt": "no"},
        files={"README.md": "readme", "CHANGELOG.md": "c", "LICENSE.md": "l", "contributing.md": "c",
               "style.md": "Write tersely.", "empty.md": ""}))
    assert plugin.rules == [("a.md", "rule A"), ("b.md", "rule B")]
    assert plugin.fragments == [("style.md", "Write tersely.")]


def test_prompt_sections_in_order(tmp_path):
    config = tmp_path / "configs"
    config.mkdir()
    (config / "system-prompt.md").write_text("You are a tester.")
    plugin = load_plugin(make_plugin(tmp_path / "pl", "p", rules={"r.md": "Never leak secrets."},
                                     files={"style.md": "Write tersely."}, skill="greet"))
    skills = load_plugin_skills([plugin], "openai")
    extras = WorkspaceExtras(plugins=[plugin], plugin_skills=skills)
    prompt = build_system_prompt(config, [], skills, tool_names=["greet_tool"], extras=extras)
    order = [prompt.index(s) for s in ("You are a tester.", "## Platform Rules\nNever leak secrets.",
                                       "## Platform Guidelines\nWrite tersely.", "## Your Skills", "### Greet")]
    assert order == sorted(order)
    assert "## Parent Context" not in prompt and "## Your Team" not in prompt


def test_plugin_skill_tools_loaded_in_place(tmp_path):
    plugin = load_plugin(make_plugin(tmp_path, "p", skill="greet"))
    assert plugin.skill_names == ["greet"]
    skills = load_plugin_skills([plugin], "echo")
    assert [s.metadata.name for s in skills] == ["Greet"]
    tools = collect_tools({}, skills)
    assert asyncio.run(tools["greet_tool"](x="hi")) == {"plugin": "greet", "x": "hi"}
    assert not (tmp_path / "skills").exists()  # nothing copied


def test_echo_adapter_loads_plugin_skills(tmp_path, monkeypatch):
    config = tmp_path / "configs"
    make_plugin(config / "plugins", "p", skill="greet")
    monkeypatch.setenv("PLUGINS_DIR", str(tmp_path / "none"))
    adapter = EchoAdapter()
    asyncio.run(adapter.setup(AdapterConfig(config_path=str(config))))
    assert "greet_tool" in adapter.all_tools
    assert [s.metadata.id for s in adapter.loaded_skills] == ["greet"]


def test_a_plugin_whose_runtimes_leave_the_current_one_out_is_inert(tmp_path):
    config = tmp_path / "configs"
    env = {"PLUGINS_DIR": str(tmp_path / "none")}
    make_plugin(config / "plugins", "only-openai", manifest="runtimes: [openai]\n", rules={"r.md": "openai rule"})
    make_plugin(config / "plugins", "everywhere", manifest="runtimes: ['*']\n", rules={"r.md": "shared rule"})
    make_plugin(config / "plugins", "unlisted", rules={"r.md": "no manifest"})
    make_plugin(config / "plugins", "single", manifest="runtimes: echo\n", rules={"r.md": "echo only"})
    assert [p.name for p in discover_plugins(config, env, "echo")] == ["everywhere", "single", "unlisted"]
    assert [p.name for p in discover_plugins(config, env, "openai")] == ["everywhere", "only-openai", "unlisted"]
    assert len(discover_plugins(config, env)) == 4  # no runtime given: everything
