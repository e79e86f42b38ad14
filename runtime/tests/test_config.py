import pytest

from molecule_runtime.config import ConfigError, load_config

from .conftest import write_config


def test_empty_file_gives_all_defaults(tmp_path):
    (tmp_path / "config.yaml").write_text("")
    config = load_config(tmp_path, env={})
    assert config.name == "Workspace"
    assert config.description == ""
    assert config.version == "1.0.0"
    assert config.tier == 1
    assert config.model == "anthropic:claude-opus-4-7"
    assert config.runtime == "langgraph"
    assert config.a2a.port == 8000 and config.a2a.streaming and config.a2a.push_notifications
    assert config.delegation.retry_attempts == 3 and config.delegation.timeout == 120.0
    assert config.skills == [] and config.prompt_files == []
    assert config.effective_prompt_files == ["system-prompt.md"]
    assert config.runtime_config.required_env == []
    assert config.idle_interval_seconds == 600


def test_values_are_read_and_unknown_keys_ignored(tmp_path):
    write_config(tmp_path, """
        name: PM
        description: Plans
        version: 2.0.0
        tier: "3"
        runtime: echo
        skills: [research, summarise]
        a2a: {port: 9001, streaming: false}
        runtime_config: {required_env: [OPENAI_API_KEY], timeout: 30, provider_url: http://x}
        env: {required: [FOO]}
        template_schema_version: 7
    """)
    config = load_config(tmp_path, env={})
    assert (config.name, config.description, config.version, config.tier) == ("PM", "Plans", "2.0.0", 3)
    assert config.skills == ["research", "summarise"]
    assert config.a2a.port == 9001 and config.a2a.streaming is False and config.a2a.push_notifications
    assert config.runtime_config.required_env == ["OPENAI_API_KEY"]
    # adapter-specific runtime_config keys survive (unlike HEAD)
    assert config.runtime_config.as_dict()["provider_url"] == "http://x"


def test_tier_that_is_not_digits_falls_back_to_1(tmp_path):
    write_config(tmp_path, "tier: high\n")
    assert load_config(tmp_path, env={}).tier == 1


def test_model_provider_env_overrides_yaml(tmp_path):
    write_config(tmp_path, "model: openai:gpt-4.1-mini\n")
    assert load_config(tmp_path, env={"MODEL_PROVIDER": "ollama:llama3"}).model == "ollama:llama3"
    assert load_config(tmp_path, env={}).model == "openai:gpt-4.1-mini"


def test_initial_prompt_inline_wins_over_file(tmp_path):
    (tmp_path / "boot.md").write_text("from file\n")
    write_config(tmp_path, "initial_prompt_file: boot.md\n")
    assert load_config(tmp_path, env={}).initial_prompt == "from file"
    write_config(tmp_path, "initial_prompt: inline\ninitial_prompt_file: boot.md\n")
    assert load_config(tmp_path, env={}).initial_prompt == "inline"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config.yaml not found"):
        load_config(tmp_path / "nope", env={})


def test_bad_yaml_names_the_line(tmp_path):
    write_config(tmp_path, "name: ok\nskills: [a, b\ndescription: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    assert "invalid YAML" in str(err.value)
    assert "line 3" in str(err.value) or "line 4" in str(err.value)


def test_top_level_must_be_a_mapping(tmp_path):
    write_config(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path, env={})


@pytest.mark.parametrize("body, field", [
    ("skills: research\n", "'skills'"),
    ("a2a: {port: eighty}\n", "'a2a.port'"),
    ("a2a: 8000\n", "'a2a'"),
    ("a2a: {streaming: maybe}\n", "'a2a.streaming'"),
    ("runtime_config: {required_env: OPENAI_API_KEY}\n", "'runtime_config.required_env'"),
    ("name: {first: x}\n", "'name'"),
    ("delegation: {timeout: soon}\n", "'delegation.timeout'"),
])
def test_bad_field_is_named(tmp_path, body, field):
    write_config(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    assert field in str(err.value)
