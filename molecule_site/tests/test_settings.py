"""Startup refuses bad configuration. Each case imports the settings in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

VALID_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes


def start_django(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOLECULE_", "ADMIN_TOKEN", "SECRETS_", "DJANGO_"))}
    env.update(
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        MOLECULE_HOME=str(tmp_path),
        DJANGO_SETTINGS_MODULE="molecule_site.settings",
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )


def test_defaults_start(tmp_path):
    result = start_django(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "http", "PORT must be an integer"),
        ("RATE_LIMIT", "-5", "RATE_LIMIT must be at least 1"),
        ("ACTIVITY_RETENTION_DAYS", "a week", "ACTIVITY_RETENTION_DAYS must be an integer"),
        ("ACTIVITY_CLEANUP_INTERVAL_HOURS", "0", "ACTIVITY_CLEANUP_INTERVAL_HOURS must be at least 1"),
        ("PLATFORM_URL", "localhost:8080", "PLATFORM_URL must be a URL"),
        ("AWARENESS_URL", "ftp://awareness", "AWARENESS_URL must be a URL"),
        ("REDIS_URL", "memcached://x", "REDIS_URL must be a URL"),
        ("DATABASE_URL", "sqlite:///db.sqlite3", "DATABASE_URL must be a URL"),
        ("SECRETS_ENCRYPTION_KEY", "too-short", "SECRETS_ENCRYPTION_KEY must be base64 of 32 bytes"),
        ("MOLECULE_ALLOW_LOCAL_PROVISIONER", "maybe", "MOLECULE_ALLOW_LOCAL_PROVISIONER must be a boolean"),
        ("LOCAL_RUNTIME_UID_BASE", "0", "LOCAL_RUNTIME_UID_BASE must be at least 1000"),
        ("LOCAL_RUNTIME_UID_COUNT", "4294967295", "LOCAL_RUNTIME_UID_COUNT must be at most 2394967295"),
    ],
)
def test_bad_value_stops_startup_naming_the_variable(tmp_path, variable, value, message):
    result = start_django(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr
    assert "started" not in result.stdout


def test_production_refuses_to_start_without_its_keys(tmp_path):
    result = start_django(tmp_path, MOLECULE_ENV="production")
    assert result.returncode != 0
    assert "refuses to start without: ADMIN_TOKEN, SECRETS_ENCRYPTION_KEY, DJANGO_SECRET_KEY" in result.stderr


def test_production_starts_with_its_keys_and_generates_none(tmp_path):
    result = start_django(
        tmp_path, MOLECULE_ENV="prod", ADMIN_TOKEN="admin-token", SECRETS_ENCRYPTION_KEY=VALID_KEY,
        DJANGO_SECRET_KEY="a-long-random-django-secret-key",
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secrets_encryption.key").exists()


def test_development_generates_a_persistent_encryption_key(tmp_path):
    assert start_django(tmp_path).returncode == 0
    key_file = tmp_path / "secrets_encryption.key"
    first = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert start_django(tmp_path).returncode == 0
    assert key_file.read_text() == first
