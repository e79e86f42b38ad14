"""Provisioner settings: production keeps agents off the platform's machine unless allowed."""

import pytest

from molecule_site.tests.test_settings import VALID_KEY, start_django

PRODUCTION = {
    "MOLECULE_ENV": "production", "ADMIN_TOKEN": "admin-token", "SECRETS_ENCRYPTION_KEY": VALID_KEY,
    "DJANGO_SECRET_KEY": "a-long-random-django-secret-key",
}


def test_production_refuses_the_local_provisioner_naming_the_variable_that_allows_it(tmp_path):
    result = start_django(tmp_path, MOLECULE_PROVISIONER="local", **PRODUCTION)
    assert result.returncode != 0
    assert "MOLECULE_PROVISIONER=local is refused with MOLECULE_ENV=production" in result.stderr
    assert "set MOLECULE_ALLOW_LOCAL_PROVISIONER=1" in result.stderr


@pytest.mark.parametrize("overrides", [
    {"MOLECULE_PROVISIONER": "local", "MOLECULE_ALLOW_LOCAL_PROVISIONER": "1", **PRODUCTION},
    {"MOLECULE_PROVISIONER": "auto", **PRODUCTION},
    {"MOLECULE_PROVISIONER": "local"},
])
def test_the_local_provisioner_starts_when_allowed_auto_or_outside_production(tmp_path, overrides):
    result = start_django(tmp_path, **overrides)
    assert result.returncode == 0, result.stderr

