"""shared_runtime: endpoint/model/key resolution, preflight problems, tool calls for a model, history."""

import asyncio
import json

import pytest

from molecule_runtime.adapters.shared_runtime import (build_system_prompt, resolve_llm_settings,
                                                      run_tool_for_model, settings_problems)

from ..conftest import write_skill


def test_openai_prefix_is_stripped_and_the_sdk_default_endpoint_is_used():
    s = resolve_llm_settings("openai:gpt-4o", {}, {"OPENAI_API_KEY": "sk-1"})
    assert (s.provider, s.model, s.base_url, s.api_key) == ("openai", "gpt-4o", None, "sk-1")
    assert (s.max_tool_rounds, s.max_retries, s.timeout, s.stream) == (10, 2, None, True)


def test_no_prefix_means_openai_and_ollama_tags_keep_their_colon():
    assert resolve_llm_settings("gpt-4o-mini", {}, {}).model == "gpt-4o-mini"
    s = resolve_llm_settings("llama3.1:8b", {}, {"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_API_KEY": "x"})
    assert (s.provider, s.model, s.base_url) == ("openai", "llama3.1:8b", "http://localhost:11434/v1")


def test_ollama_prefix_defaults_to_the_local_server_and_needs_no_real_key():
    s = resolve_llm_settings("ollama:llama3.1", {}, {})
    assert (s.model, s.base_url, s.api_key) == ("llama3.1", "http://localhost:11434/v1", "ollama")
    assert settings_problems(s, "openai") == []


def test_base_url_env_wins_over_runtime_config():
    rc = {"base_url": "http://from-config/v1", "model": "sonnet"}  # runtime_config.model is the CLI runtimes'
    assert resolve_llm_settings("gpt-4o", rc, {}).base_url == "http://from-config/v1"
    s = resolve_llm_settings("gpt-4o", rc, {"OPENAI_BASE_URL": "http://from-env/v1"})
    assert (s.base_url, s.model) == ("http://from-env/v1", "gpt-4o")


def test_provider_keys_and_api_key_env_override():
    s = resolve_llm_settings("anthropic:claude-opus-4-7", {}, {"ANTHROPIC_API_KEY": "ak", "OPENAI_API_KEY": "ok"})
    assert (s.model, s.base_url, s.api_key) == ("claude-opus-4-7", "https://api.anthropic.com/v1/", "ak")
    s = resolve_llm_settings("groq:llama-3.3-70b", {}, {"OPENAI_API_KEY": "ok"})
    assert (s.base_url, s.api_key) == ("https://api.groq.com/openai/v1", "ok")
    s = resolve_llm_settings("gpt-4o", {"api_key_env": "MY_GATEWAY_KEY"}, {"MY_GATEWAY_KEY": "gk", "OPENAI_API_KEY": "ok"})
    assert (s.api_key, s.api_key_env) == ("gk", "MY_GATEWAY_KEY")


def test_problems_name_the_missing_key_and_base_url():
    [key] = settings_problems(resolve_llm_settings("openai:gpt-4o", {}, {}), "openai")
    assert key.title == "Missing API key" and "OPENAI_API_KEY is not set" in key.detail and key.demote_in_smoke
    assert "Ollama accepts any non-empty value" in key.fix
    [url] = settings_problems(resolve_llm_settings("litellm:claude", {}, {"OPENAI_API_KEY": "k"}), "langgraph")
    assert url.title == "Missing base URL" and "OPENAI_BASE_URL is not set" in url.detail
    [key] = settings_problems(resolve_llm_settings("anthropic:claude-opus-4-7", {}, {}), "langgraph")
    assert "ANTHROPIC_API_KEY is not set" in key.detail


@pytest.mark.parametrize("rc, message", [
    ({"max_tool_rounds": "many"}, "runtime_config.max_tool_rounds must be an integer"),
    ({"max_tool_rounds": 0}, "runtime_config.max_tool_rounds must be >= 1"),
    ({"timeout": "soon"}, "runtime_config.timeout must be a number"),
    ({"stream": "yes"}, "runtime_config.stream must be true or false"),
])
def test_bad_runtime_config_values_are_named(rc, message):
    with pytest.raises(ValueError, match=message):
        resolve_llm_settings("gpt-4o", rc, {})


def test_run_tool_for_model_handles_sync_async_and_failures():
    def double(x: int) -> int:
        return 2 * x

    async def boom() -> dict:
        raise RuntimeError("kaput")

    tools = {"double": double, "boom": boom}
    run = lambda name, args: json.loads(asyncio.run(run_tool_for_model(tools, name, args)))  # noqa: E731
    assert run("double", '{"x": 4}') == 8
    assert run("double", {"x": 5}) == 10
    assert "bad arguments for double" in run("double", '{"y": 1}')["error"]
    assert run("boom", "") == {"error": "boom failed: RuntimeError: kaput"}
    assert "must be a JSON object" in run("double", "[1]")["error"]


def test_system_prompt_parts(tmp_path):
    (tmp_path / "system-prompt.md").write_text("You are PM.")
    (tmp_path / "MEMORY.md").write_text("Remember the roadmap.")
    write_skill(tmp_path, "calc", "name: Calc\ndescription: adds numbers\n")
    from molecule_runtime.skills import load_skills

    prompt = build_system_prompt(tmp_path, [], load_skills(tmp_path, ["calc"]),
                                 tool_names=["commit_memory", "delegate_task"])
    assert prompt.index("You are PM.") < prompt.index("Remember the roadmap.") < prompt.index("## Your Skills")
    assert "### Calc\nadds numbers\nDo calc things." in prompt
    assert "You can call these tools: commit_memory, delegate_task" in prompt
    assert "## Handling delegation failures" in prompt
