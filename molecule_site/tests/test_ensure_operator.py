import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("ensure_operator", stdout=out)
    return out.getvalue()


def test_generates_and_prints_a_password_once(monkeypatch):
    for name in ("MOLECULE_ADMIN_USER", "MOLECULE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    output = run()
    password = output.split("password ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff and user.check_password(password)
    assert run() == ""  # an operator exists: nothing is created or printed again
    assert get_user_model().objects.count() == 1


def test_takes_credentials_from_the_environment_without_printing_them(monkeypatch):
    monkeypatch.setenv("MOLECULE_ADMIN_USER", "ops")
    monkeypatch.setenv("MOLECULE_ADMIN_PASSWORD", "s3cret-from-env")
    output = run()
    assert "s3cret-from-env" not in output
    assert get_user_model().objects.get(username="ops").check_password("s3cret-from-env")
