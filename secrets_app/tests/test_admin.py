"""Secret admin: values are encrypted on save and never rendered, echoed or logged."""

import json
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.urls import reverse

from secrets_app.crypto import AES_GCM_VERSION, decrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Workspace

VALUE = "sk-live-do-not-leak-4242"
NEW_VALUE = "sk-live-rotated-value-9797"


@dataclass
class SecretKind:
    model: type
    extra_fields: dict

    def url(self, view: str, *args) -> str:
        return reverse(f"admin:secrets_app_{self.model._meta.model_name}_{view}", args=args)


@pytest.fixture(params=["workspace", "global"])
def kind(request, db):
    if request.param == "workspace":
        workspace = Workspace.objects.create(name="Dev")
        return SecretKind(WorkspaceSecret, {"workspace": workspace.pk})
    return SecretKind(GlobalSecret, {})


def _add(client, kind: SecretKind, **fields):
    return client.post(kind.url("add"), {**kind.extra_fields, **fields})


def _change(client, kind: SecretKind, secret, **fields):
    return client.post(kind.url("change", secret.pk), {**kind.extra_fields, **fields})


@pytest.mark.django_db
def test_add_stores_ciphertext_that_decrypts_to_the_value(operator_client, kind):
    response = _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)

    assert response.status_code == 302
    secret = kind.model.objects.get(key="OPENAI_API_KEY")
    stored = bytes(secret.encrypted_value)
    assert secret.encryption_version == AES_GCM_VERSION
    assert VALUE.encode() not in stored
    assert decrypt(stored, secret.encryption_version) == VALUE


@pytest.mark.django_db
def test_add_requires_a_value(operator_client, kind):
    response = _add(operator_client, kind, key="EMPTY", value="")

    assert response.status_code == 200
    assert "value" in response.context["adminform"].form.errors
    assert not kind.model.objects.filter(key="EMPTY").exists()


@pytest.mark.django_db
def test_pages_never_show_the_value(operator_client, kind):
    _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")

    for url in (kind.url("changelist"), kind.url("change", secret.pk), kind.url("history", secret.pk)):
        response = operator_client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert VALUE not in body, url
        assert "OPENAI_API_KEY" in body, url
    change_form = operator_client.get(kind.url("change", secret.pk)).context["adminform"].form
    assert "encrypted_value" not in change_form.fields


@pytest.mark.django_db
def test_validation_error_does_not_echo_the_value(operator_client, kind):
    response = _add(operator_client, kind, key="", value=VALUE)

    assert response.status_code == 200
    assert "key" in response.context["adminform"].form.errors
    assert VALUE not in response.content.decode()
    assert not kind.model.objects.exists()


@pytest.mark.django_db
def test_change_with_blank_value_keeps_the_stored_ciphertext(operator_client, kind):
    _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")
    before = bytes(secret.encrypted_value)

    response = _change(operator_client, kind, secret, key="RENAMED", value="")

    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.key == "RENAMED"
    assert bytes(secret.encrypted_value) == before


@pytest.mark.django_db
def test_change_with_new_value_re_encrypts(operator_client, kind):
    _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")

    _change(operator_client, kind, secret, key="OPENAI_API_KEY", value=NEW_VALUE)

    secret.refresh_from_db()
    assert decrypt(secret.encrypted_value, secret.encryption_version) == NEW_VALUE
    assert NEW_VALUE.encode() not in bytes(secret.encrypted_value)


@pytest.mark.django_db
def test_admin_log_records_the_change_but_never_the_value(operator_client, kind):
    _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")
    _change(operator_client, kind, secret, key="OPENAI_API_KEY", value=NEW_VALUE)

    entries = LogEntry.objects.filter(object_id=str(secret.pk)).order_by("action_time")

    assert [entry.action_flag for entry in entries] == [ADDITION, CHANGE]
    assert json.loads(entries.last().change_message) == [{"changed": {"fields": ["Value"]}}]
    for entry in entries:
        for text in (entry.change_message, entry.get_change_message(), entry.object_repr):
            assert VALUE not in text and NEW_VALUE not in text


# --- saves and deletes go through the services, so they restart what they affect ---------------------------

def _affected(kind: SecretKind, secret) -> list[str]:
    """A workspace secret's owner; for a global one, every workspace inheriting it (both are running)."""
    if kind.model is WorkspaceSecret:
        return [str(secret.workspace_id)]
    return sorted(str(w.id) for w in Workspace.objects.all())


@pytest.fixture
def bystander(db):
    """A running workspace with no secrets of its own: it inherits every global one."""
    return Workspace.objects.create(name="Bystander", status="online")


@pytest.mark.django_db
def test_add_and_change_restart_the_affected_workspace_on_commit(
    operator_client, kind, bystander, provisioner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")
    expected = _affected(kind, secret)
    assert provisioner.restarts == [expected]

    with django_capture_on_commit_callbacks(execute=True):
        _change(operator_client, kind, secret, key="OPENAI_API_KEY", value=NEW_VALUE)
    assert provisioner.restarts == [expected, expected]


@pytest.mark.django_db
@pytest.mark.parametrize("bulk", [False, True])
def test_delete_restarts_the_affected_workspace(
    operator_client, kind, bystander, provisioner, django_capture_on_commit_callbacks, bulk
):
    _add(operator_client, kind, key="OPENAI_API_KEY", value=VALUE)
    secret = kind.model.objects.get(key="OPENAI_API_KEY")
    provisioner.restarts.clear()

    with django_capture_on_commit_callbacks(execute=True):
        if bulk:
            response = operator_client.post(
                kind.url("changelist"), {"action": "delete_selected", "_selected_action": [secret.pk], "post": "yes"}
            )
        else:
            response = operator_client.post(kind.url("delete", secret.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not kind.model.objects.exists()
    assert provisioner.restarts == [_affected(kind, secret)]


@pytest.mark.django_db
def test_a_key_that_cannot_be_an_env_var_is_refused(operator_client, kind):
    response = _add(operator_client, kind, key="A=B", value=VALUE)

    assert response.status_code == 200
    assert "key" in response.context["adminform"].form.errors
    assert VALUE not in response.content.decode()
    assert not kind.model.objects.exists()
