"""EchoAdapter setup: skills filtered by runtime, tool map, prompt assembly, hot-reload swap."""

import asyncio

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter
from molecule_runtime.skills import load_skill

from ...conftest import write_skill


async def _builtin(**kwargs):
    return kwargs


def _setup(tmp_path, skills):
    adapter = Adapter()
    cfg = AdapterConfig(config_path=str(tmp_path), tools=skills, builtin_tools={"commit_memory": _builtin})
    asyncio.run(adapter.setup(cfg))
    asyncio.run(adapter.create_executor(cfg))
    return adapter


def test_setup_loads_echo_skills_and_merges_tools_and_prompt(tmp_path):
    (tmp_path / "system-prompt.md").write_text("You are Echo.")
    write_skill(tmp_path, "calc", "name: Calc\nruntime: [echo]\n", "def double(x):\n    return 2 * x\n")
    write_skill(tmp_path, "lg-only", "name: LG\nruntime: langgraph\n", "def nope():\n    return 0\n")
    adapter = _setup(tmp_path, ["calc", "lg-only"])
    assert [s.metadata.id for s in adapter.loaded_skills] == ["calc"]
    assert sorted(adapter.all_tools) == ["commit_memory", "double"]
    assert adapter._executor.tools.keys() == adapter.all_tools.keys()
    assert adapter.system_prompt.startswith("You are Echo.")
    assert "## Skill: Calc" in adapter.system_prompt


def test_replace_skills_swaps_tools_and_drops_removed(tmp_path):
    write_skill(tmp_path, "calc", "name: Calc\n", "def double(x):\n    return 2 * x\n")
    adapter = _setup(tmp_path, ["calc"])
    write_skill(tmp_path, "calc", "name: Calc\n", "def triple(x):\n    return 3 * x\n")
    (tmp_path / "skills" / "calc" / "scripts" / "calc.py").write_text("def triple(x):\n    return 3 * x\n")
    adapter.replace_skills({"calc": load_skill(tmp_path, "calc", "echo")})
    assert sorted(adapter._executor.tools) == ["commit_memory", "triple"]
    adapter.replace_skills({"calc": None})
    assert adapter.loaded_skills == [] and sorted(adapter._executor.tools) == ["commit_memory"]
