import sys

import anyio
import pytest

from molecule_runtime.skills import SkillsWatcher, load_skill, load_skills, parse_skill_md

from .conftest import write_skill

TOOL_V1 = '''
from json import dumps  # imported names are not tools

def lookup(q: str) -> str:
    return "v1:" + q

def _private():
    pass
'''


def test_front_matter_fields_and_tools(tmp_path):
    write_skill(tmp_path, "lookup", """
        name: Lookup
        description: Looks things up
        tags: [a, b]
        examples: [x]
    """, TOOL_V1)
    skill = load_skill(tmp_path, "lookup", "echo")
    assert skill.metadata.id == "lookup" and skill.metadata.name == "Lookup"
    assert skill.metadata.description == "Looks things up"
    assert skill.metadata.tags == ["a", "b"] and skill.metadata.examples == ["x"]
    assert skill.metadata.runtime == ["*"]
    assert skill.instructions == "Do lookup things."
    assert sorted(skill.tools) == ["lookup"]
    assert skill.tools["lookup"]("q") == "v1:q"
    assert "skill_tool_lookup" in sys.modules


def test_defaults_when_front_matter_is_missing_or_bad():
    assert parse_skill_md("just text") == ({}, "just text", ["SKILL.md has no front matter"])
    meta, body, warnings = parse_skill_md("---\n: [bad\n---\nbody")
    assert meta == {} and body == "body" and "not valid YAML" in warnings[0]
    meta, body, warnings = parse_skill_md("---\n- a list\n---\nbody")
    assert meta == {} and warnings == ["SKILL.md front matter is not a mapping"]


def test_name_defaults_to_folder_and_missing_skill_md_is_skipped(tmp_path):
    (tmp_path / "skills" / "plain").mkdir(parents=True)
    (tmp_path / "skills" / "plain" / "SKILL.md").write_text("No front matter here.")
    (tmp_path / "skills" / "empty").mkdir(parents=True)
    skills = load_skills(tmp_path, ["plain", "empty", "absent"])
    assert [s.metadata.id for s in skills] == ["plain"]
    assert skills[0].metadata.name == "plain" and skills[0].metadata.description == ""


def test_runtime_filter(tmp_path):
    write_skill(tmp_path, "only-lg", "runtime: langgraph\n")
    write_skill(tmp_path, "for-echo", "runtime: [echo, langgraph]\n")
    write_skill(tmp_path, "weird", "runtime: {a: 1}\n")
    assert [s.metadata.id for s in load_skills(tmp_path, ["only-lg", "for-echo", "weird"], "echo")] == \
        ["for-echo", "weird"]


def test_broken_script_does_not_break_the_skill(tmp_path):
    write_skill(tmp_path, "broken", "name: broken\n", "raise RuntimeError('boom')\n")
    skill = load_skill(tmp_path, "broken", "echo")
    assert skill.tools == {} and "failed to load" in skill.warnings[0]


def test_explicit_tools_list_and_secret_env_hidden_during_import(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MOLECULE_INBOUND_SECRET", "inbound-secret")
    write_skill(tmp_path, "explicit", "name: explicit\n", '''
        import os
        SEEN = [os.environ.get("OPENAI_API_KEY"), os.environ.get("MOLECULE_INBOUND_SECRET")]
        def a(): return SEEN
        def b(): return 2
        TOOLS = [a]
    ''')
    skill = load_skill(tmp_path, "explicit")
    assert list(skill.tools) == ["a"]
    assert skill.tools["a"]() == [None, None]
    import os
    assert os.environ["OPENAI_API_KEY"] == "sk-secret"
    assert os.environ["MOLECULE_INBOUND_SECRET"] == "inbound-secret"


@pytest.mark.anyio
async def test_watcher_hot_reloads_changed_skill_and_calls_back(tmp_path):
    write_skill(tmp_path, "lookup", "name: Lookup\ndescription: v1\n", TOOL_V1)
    write_skill(tmp_path, "other", "name: Other\n")
    calls = []
    got = anyio.Event()

    async def on_reload(reloaded):
        calls.append(reloaded)
        got.set()

    watcher = SkillsWatcher(tmp_path, ["lookup", "other"], on_reload, "echo", poll_interval=0.05, debounce=0.05)
    watcher.start()
    await watcher.ready.wait()
    await anyio.sleep(0.2)  # let the poller take its baseline
    write_skill(tmp_path, "lookup", "name: Lookup\ndescription: v2\n", TOOL_V1.replace("v1:", "v2:"))
    with anyio.fail_after(5):
        await got.wait()
    await watcher.stop()
    reloaded = calls[0]
    assert list(reloaded) == ["lookup"]
    assert reloaded["lookup"].metadata.description == "v2"
    assert reloaded["lookup"].tools["lookup"]("q") == "v2:q"


@pytest.mark.anyio
async def test_watcher_reports_a_removed_skill_as_none(tmp_path):
    import shutil

    write_skill(tmp_path, "gone", "name: Gone\n")
    got = anyio.Event()
    calls = []

    def on_reload(reloaded):  # sync callbacks work too
        calls.append(reloaded)
        got.set()

    watcher = SkillsWatcher(tmp_path, ["gone"], on_reload, poll_interval=0.05, debounce=0.05)
    watcher.start()
    await watcher.ready.wait()
    await anyio.sleep(0.2)
    shutil.rmtree(tmp_path / "skills" / "gone")
    with anyio.fail_after(5):
        await got.wait()
    await watcher.stop()
    assert calls[0] == {"gone": None}


@pytest.mark.anyio
async def test_watcher_loads_a_skill_added_to_config_yaml_while_running_and_ignores_unlisted_ones(tmp_path):
    """A promoted skill: the platform lists it in config.yaml, then writes skills/<name>/ (the
    folder did not exist at boot, nor did skills/)."""
    (tmp_path / "config.yaml").write_text("name: W\nruntime: echo\nskills: []\n")
    got = anyio.Event()
    calls = []

    def on_reload(reloaded):
        calls.append(reloaded)
        got.set()

    watcher = SkillsWatcher(tmp_path, [], on_reload, "echo", poll_interval=0.05, debounce=0.05)
    watcher.start()
    await watcher.ready.wait()
    await anyio.sleep(0.2)
    write_skill(tmp_path, "stray", "name: Stray\n")  # not listed: not loaded
    await anyio.sleep(0.5)
    assert calls == []
    (tmp_path / "config.yaml").write_text("name: W\nruntime: echo\nskills: [triage]\n")
    write_skill(tmp_path, "triage", "name: Triage\ndescription: promoted\n")
    with anyio.fail_after(5):
        await got.wait()
    await watcher.stop()
    assert list(calls[0]) == ["triage"] and calls[0]["triage"].metadata.description == "promoted"
    assert watcher.skill_names == ["triage"]


def test_a_listed_skill_whose_file_events_were_missed_is_found_by_the_rescan(tmp_path):
    """inotify misses files created in a new directory before its watch exists: any batch rescans."""
    (tmp_path / "config.yaml").write_text("skills: [late, absent]\n")
    write_skill(tmp_path, "late", "name: Late\n")
    watcher = SkillsWatcher(tmp_path, [], lambda reloaded: None)
    assert watcher._newly_listed() == ["late"]  # absent has no SKILL.md (yet)
    assert watcher._newly_listed() == [] and watcher.skill_names == ["late"]
