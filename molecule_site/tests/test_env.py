import pytest

from molecule_site.env import EnvError, env_bool, env_choice, env_int, env_list, env_str, env_url


def test_env_int_reads_value_and_default(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT", " 42 ")
    assert env_int("RATE_LIMIT", 600) == 42
    monkeypatch.delenv("RATE_LIMIT")
    assert env_int("RATE_LIMIT", 600) == 600


def test_env_int_rejects_non_integer_naming_the_variable(monkeypatch):
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(EnvError, match=r"^PORT must be an integer, got 'eighty'"):
        env_int("PORT", 8080)


def test_env_int_enforces_bounds(monkeypatch):
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(EnvError, match=r"^PORT must be at most 65535"):
        env_int("PORT", 8080, minimum=1, maximum=65535)
    monkeypatch.setenv("ACTIVITY_RETENTION_DAYS", "0")
    with pytest.raises(EnvError, match=r"^ACTIVITY_RETENTION_DAYS must be at least 1"):
        env_int("ACTIVITY_RETENTION_DAYS", 7, minimum=1)


def test_env_bool_accepts_common_spellings_and_rejects_others(monkeypatch):
    for raw, expected in [("1", True), ("TRUE", True), ("on", True), ("0", False), ("No", False)]:
        monkeypatch.setenv("DJANGO_DEBUG", raw)
        assert env_bool("DJANGO_DEBUG", not expected) is expected
    monkeypatch.setenv("DJANGO_DEBUG", "maybe")
    with pytest.raises(EnvError, match=r"^DJANGO_DEBUG must be a boolean"):
        env_bool("DJANGO_DEBUG", False)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "http://a.test, ,http://b.test,")
    assert env_list("CORS_ORIGINS", []) == ["http://a.test", "http://b.test"]


def test_env_str_treats_blank_as_unset(monkeypatch):
    monkeypatch.setenv("AWARENESS_URL", "   ")
    assert env_str("AWARENESS_URL", "fallback") == "fallback"


def test_env_url_rejects_wrong_scheme_naming_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379")
    with pytest.raises(EnvError, match=r"^REDIS_URL must be a URL starting with one of redis://, rediss://"):
        env_url("REDIS_URL", schemes=("redis", "rediss"))


def test_env_url_never_echoes_a_secret_value(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/molecule")
    with pytest.raises(EnvError) as caught:
        env_url("DATABASE_URL", schemes=("postgres", "postgresql"), secret=True)
    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_env_choice_is_case_insensitive(monkeypatch):
    monkeypatch.setenv("MOLECULE_PROVISIONER", "Docker")
    assert env_choice("MOLECULE_PROVISIONER", "auto", ("auto", "none", "local", "docker")) == "docker"
    monkeypatch.setenv("MOLECULE_PROVISIONER", "k8s")
    with pytest.raises(EnvError, match=r"^MOLECULE_PROVISIONER must be one of auto, none, local, docker"):
        env_choice("MOLECULE_PROVISIONER", "auto", ("auto", "none", "local", "docker"))
