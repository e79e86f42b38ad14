import sys

import pytest

from molecule_runtime.adapters import BUILTIN_ADAPTERS, AdapterNotFound, get_adapter, list_adapters
from molecule_runtime.adapters.base import BaseAdapter, RuntimeCapabilities
from molecule_runtime.adapters.echo import Adapter as EchoAdapter


def test_builtin_adapter_by_runtime_name():
    assert get_adapter("echo", env={}) is EchoAdapter
    assert issubclass(EchoAdapter, BaseAdapter)


def test_adapter_module_env_overrides_the_runtime_name():
    assert get_adapter("langgraph", env={"ADAPTER_MODULE": "molecule_runtime.adapters.echo"}) is EchoAdapter


def test_unknown_runtime_lists_what_is_available():
    with pytest.raises(AdapterNotFound) as err:
        get_adapter("nosuch", env={})
    assert "nosuch" in str(err.value) and "echo" in str(err.value) and "ADAPTER_MODULE" in str(err.value)


def test_module_without_adapter_attribute(tmp_path, monkeypatch):
    (tmp_path / "no_adapter_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AttributeError, match="no 'Adapter' attribute"):
        get_adapter("", env={"ADAPTER_MODULE": "no_adapter_mod"})
    sys.modules.pop("no_adapter_mod", None)


def test_capabilities_wire_keys():
    caps = RuntimeCapabilities(provides_native_heartbeat=True)
    assert caps.to_dict() == {"heartbeat": True, "scheduler": False, "session": False, "status_mgmt": False,
                              "retry": False, "activity_decoration": False, "channel_dispatch": False}


def test_list_adapters():
    adapters = list_adapters()
    assert [a["name"] for a in adapters] == sorted(BUILTIN_ADAPTERS) == [
        "autogen", "claude-code", "cli", "crewai", "deepagents", "echo", "google-adk", "hermes", "langgraph",
        "openai", "openclaw"]
    adapters = [a for a in adapters if a["name"] == "echo"]
    assert adapters[0] == {"name": "echo", "display_name": "Echo", "description": "Deterministic test adapter",
                           "config_schema": {"reply_prefix": {"type": "string", "default": "echo: "},
                                             "peer_wait_seconds": {"type": "number", "default": 0}}}


def test_empty_runtime_means_the_default_langgraph():
    from molecule_runtime.adapters import DEFAULT_RUNTIME, adapter_module_for

    assert DEFAULT_RUNTIME == "langgraph"
    assert adapter_module_for("", env={}) == "molecule_runtime.adapters.langgraph"


SDK_MODULES = ("openai", "langgraph", "langchain_openai", "langchain_core", "langchain_anthropic", "deepagents",
               "claude_agent_sdk", "crewai", "autogen_agentchat", "autogen_core", "autogen_ext", "run_agent",
               "google.adk", "google.genai")


def test_llm_adapters_import_without_their_sdks():
    """The registry and preflight can load every adapter package even where no LLM SDK is installed."""
    import subprocess

    code = ("import sys\n"
            f"for m in {SDK_MODULES!r}: sys.modules[m] = None\n"
            "from molecule_runtime.adapters import list_adapters\n"
            "print(sorted(a['name'] for a in list_adapters()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(BUILTIN_ADAPTERS))


def test_append_to_memory_hook_is_idempotent_on_the_marker(tmp_path):
    from molecule_runtime.adapters.base import AdapterConfig

    cfg = AdapterConfig(config_path=str(tmp_path))
    adapter = EchoAdapter()
    adapter.append_to_memory_hook(cfg, "CLAUDE.md", "# plugin-x\nrule one\n")
    adapter.append_to_memory_hook(cfg, "CLAUDE.md", "# plugin-x\nrule one\n")
    assert (tmp_path / "CLAUDE.md").read_text().count("# plugin-x") == 1
