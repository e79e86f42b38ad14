"""hermes fixtures: a private HERMES_HOME per test (never ~/.hermes), no Nous/OpenRouter keys leaking
in from a developer's shell, and a model that answers tasks that take hermes a few seconds."""

import pytest


@pytest.fixture(autouse=True)
def hermes_env(monkeypatch, tmp_path):
    for name in ("HERMES_MODEL", "NOUS_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # the adapter points HERMES_HOME at its private dir; monkeypatch puts the old value back afterwards
    monkeypatch.setenv("HERMES_HOME", str(tmp_path / "unused-hermes-home"))
    return tmp_path


def hermes_yaml(extra: str = "", model: str = "openai:gpt-4o-mini") -> str:
    return f"name: Hermes Agent\nruntime: hermes\nmodel: {model}\nruntime_config:\n  max_retries: 0\n{extra}"
