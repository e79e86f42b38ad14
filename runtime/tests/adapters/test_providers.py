"""The provider map (providers.py): each prefix → API, endpoints, key variables; missing-key
messages; chat_model builds the LangChain class of each API with those settings."""

import pytest

from molecule_runtime.adapters import shared_runtime
from molecule_runtime.adapters.providers import (
    API_ANTHROPIC, API_GEMINI, API_OLLAMA, API_OPENAI, PROVIDERS, chat_model, resolve_llm_settings,
    settings_problems)

# prefix → (api, OpenAI-compatible URL, native URL, key variables in order)
TABLE = {
    "openai": (API_OPENAI, None, None, ("OPENAI_API_KEY",)),
    "litellm": (API_OPENAI, None, None, ("OPENAI_API_KEY", "LITELLM_API_KEY")),
    "vllm": (API_OPENAI, None, None, ("OPENAI_API_KEY",)),
    "openrouter": (API_OPENAI, "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1",
                   ("OPENROUTER_API_KEY", "OPENAI_API_KEY")),
    "groq": (API_OPENAI, "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1",
             ("GROQ_API_KEY", "OPENAI_API_KEY")),
    "cerebras": (API_OPENAI, "https://api.cerebras.ai/v1", "https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",)),
    "qianfan": (API_OPENAI, "https://qianfan.baidubce.com/v2", "https://qianfan.baidubce.com/v2",
                ("QIANFAN_API_KEY", "AISTUDIO_API_KEY")),
    "anthropic": (API_ANTHROPIC, "https://api.anthropic.com/v1/", None, ("ANTHROPIC_API_KEY",)),
    "google_genai": (API_GEMINI, "https://generativelanguage.googleapis.com/v1beta/openai/", None,
                     ("GOOGLE_API_KEY", "GEMINI_API_KEY")),
    "ollama": (API_OLLAMA, "http://localhost:11434/v1", "http://localhost:11434", ("OPENAI_API_KEY",)),
}


def test_the_table_covers_every_provider():
    assert set(TABLE) == set(PROVIDERS)


@pytest.mark.parametrize("prefix", sorted(TABLE))
def test_each_prefix_picks_its_api_urls_and_keys_in_order(prefix):
    api, url, native, keys = TABLE[prefix]
    s = resolve_llm_settings(f"{prefix}:some-model", {}, {})
    assert (s.provider, s.model, s.api, s.base_url, s.native_base_url) == (prefix, "some-model", api, url, native)
    assert (s.api_key_env, s.api_key_envs) == (keys[0], keys)
    # the last variable is used when it is the only one set; the first wins when all are
    assert resolve_llm_settings(f"{prefix}:m", {}, {keys[-1]: "last"}).api_key == "last"
    assert resolve_llm_settings(f"{prefix}:m", {}, {k: k.lower() for k in keys}).api_key == keys[0].lower()


def test_bare_names_mean_openai_and_unknown_prefixes_are_sent_verbatim():
    assert (resolve_llm_settings("gpt-4o", {}, {}).provider, resolve_llm_settings("gpt-4o", {}, {}).model) == \
        ("openai", "gpt-4o")
    s = resolve_llm_settings("llama3.1:8b", {}, {})
    assert (s.provider, s.model, s.api) == ("openai", "llama3.1:8b", API_OPENAI)
    assert resolve_llm_settings("Anthropic:claude-x", {}, {}).provider == "anthropic"  # prefixes are case-insensitive


def test_base_url_overrides_per_api():
    env = {"OPENAI_BASE_URL": "http://proxy/v1", "ANTHROPIC_BASE_URL": "http://ant",
           "GOOGLE_GEMINI_BASE_URL": "http://gem", "OLLAMA_HOST": "http://gpu-box:11434"}
    # chat-completions adapters keep following OPENAI_BASE_URL; native clients their own variable
    for prefix, native in [("anthropic", "http://ant"), ("google_genai", "http://gem"),
                           ("ollama", "http://gpu-box:11434"), ("groq", "http://proxy/v1")]:
        s = resolve_llm_settings(f"{prefix}:m", {}, env)
        assert (s.base_url, s.native_base_url) == ("http://proxy/v1", native), prefix
    # runtime_config.base_url comes after the variables, before the defaults
    s = resolve_llm_settings("anthropic:m", {"base_url": "http://rc"}, {})
    assert (s.base_url, s.native_base_url) == ("http://rc", "http://rc")
    assert resolve_llm_settings("anthropic:m", {"base_url": "http://rc"}, env).native_base_url == "http://ant"


def test_missing_key_messages_name_the_first_variable_and_the_alternatives():
    [key] = settings_problems(resolve_llm_settings("qianfan:ernie-4.5", {}, {}), "langgraph")
    assert key.title == "Missing API key"
    assert key.detail == "QIANFAN_API_KEY is not set (runtime 'langgraph', model 'qianfan:ernie-4.5')"
    assert key.fix.startswith("Set QIANFAN_API_KEY (or AISTUDIO_API_KEY) via the secrets API")
    [key] = settings_problems(resolve_llm_settings("google_genai:gemini-2.5-flash", {}, {}), "deepagents")
    assert key.detail.startswith("GOOGLE_API_KEY is not set (runtime 'deepagents'")
    assert "(or GEMINI_API_KEY)" in key.fix
    [key] = settings_problems(resolve_llm_settings("anthropic:claude", {"api_key_env": "MY_KEY"}, {}), "x")
    assert key.detail.startswith("MY_KEY is not set") and key.fix.startswith("Set MY_KEY via")
    assert settings_problems(resolve_llm_settings("ollama:llama3.1", {}, {}), "x") == []  # a stand-in key


def test_shared_runtime_re_exports_the_provider_map():
    assert shared_runtime.resolve_llm_settings is resolve_llm_settings
    assert shared_runtime.PROVIDERS is PROVIDERS and shared_runtime.settings_problems is settings_problems


def test_chat_model_builds_the_class_of_each_api():
    import asyncio

    async def build(model, rc=None, env=None):  # on a running loop, as the executors do
        return chat_model(resolve_llm_settings(model, rc or {}, env or {}))

    rc = {"temperature": 0.2, "timeout": 7, "max_retries": 1}
    m = asyncio.run(build("openai:gpt-4.1-mini", rc, {"OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "http://o/v1"}))
    assert type(m).__name__ == "ChatOpenAI" and (m.model_name, m.openai_api_base) == ("gpt-4.1-mini", "http://o/v1")
    assert (m.temperature, m.request_timeout, m.max_retries, m.streaming) == (0.2, 7.0, 1, True)
    m = asyncio.run(build("anthropic:claude-sonnet-4-5", rc, {"ANTHROPIC_API_KEY": "sk-a",
                                                               "ANTHROPIC_BASE_URL": "http://a"}))
    assert type(m).__name__ == "ChatAnthropic" and (m.model, m.anthropic_api_url) == ("claude-sonnet-4-5", "http://a")
    assert m.anthropic_api_key.get_secret_value() == "sk-a" and m.default_request_timeout == 7.0
    assert str(m._async_client.base_url).rstrip("/") == "http://a"
    m = asyncio.run(build("google_genai:gemini-2.5-flash", {"stream": False}, {"GEMINI_API_KEY": "g-key"}))
    assert type(m).__name__ == "ChatGoogleGenerativeAI" and m.model.endswith("gemini-2.5-flash")
    assert m.google_api_key.get_secret_value() == "g-key" and m.streaming is False
    m = asyncio.run(build("ollama:llama3.1:8b", {}, {"OLLAMA_HOST": "http://gpu:11434"}))
    assert type(m).__name__ == "ChatOllama" and (m.model, m.base_url) == ("llama3.1:8b", "http://gpu:11434")
