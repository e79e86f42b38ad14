"""Secret writes: encrypted upserts, validation, and the restarts they ask for once committed."""

import uuid

import pytest
from django.db import transaction

from molecule_site.errors import ApiError
from molecule_site.tests.backends import use_backend
from secrets_app import services
from secrets_app.crypto import AES_GCM_VERSION, decrypt, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from secrets_app.tests.conftest import RestartRecorder
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

VALUE = "sk-live-service-plaintext-1234"


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Dev", status="online")


def _own_secret(workspace, key: str) -> WorkspaceSecret:
    stored, version = encrypt("own value")
    return WorkspaceSecret.objects.create(workspace=workspace, key=key, encrypted_value=stored, encryption_version=version)


def _plaintext(secret) -> str:
    secret.refresh_from_db()
    return decrypt(secret.encrypted_value, secret.encryption_version)


# --- workspace secrets ----------------------------------------------------------------------------------

def test_set_stores_ciphertext_only_and_restarts_the_workspace_on_commit(
    workspace, provisioner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        services.workspace_secret_set(workspace_id=workspace.id, key="OPENAI_API_KEY", value=VALUE)
    assert provisioner.restarts == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert provisioner.restarts == [[str(workspace.id)]]

    secret = WorkspaceSecret.objects.get(workspace=workspace, key="OPENAI_API_KEY")
    assert secret.encryption_version == AES_GCM_VERSION
    assert VALUE.encode() not in bytes(secret.encrypted_value)
    assert _plaintext(secret) == VALUE


def test_set_again_replaces_the_value_in_the_same_row(workspace, provisioner):
    services.workspace_secret_set(workspace_id=workspace.id, key="K", value="first")
    first = WorkspaceSecret.objects.get(workspace=workspace, key="K")

    services.workspace_secret_set(workspace_id=workspace.id, key="K", value="second")

    second = WorkspaceSecret.objects.get(workspace=workspace, key="K")
    assert second.pk == first.pk and second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert _plaintext(second) == "second"


def test_a_rolled_back_set_asks_for_no_restart(workspace, provisioner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.workspace_secret_set(workspace_id=workspace.id, key="K", value=VALUE)
            raise RuntimeError("the caller's transaction fails")
    assert provisioner.restarts == []
    assert not WorkspaceSecret.objects.exists()


@pytest.mark.parametrize(
    "key, value",
    [("", VALUE), ("A=B", VALUE), ("A\x00B", VALUE), ("K", ""), ("K", 42), (None, VALUE), (["K"], VALUE)],
)
def test_set_rejects_unusable_keys_and_values(workspace, provisioner, key, value):
    with pytest.raises(ApiError) as refused:
        services.workspace_secret_set(workspace_id=workspace.id, key=key, value=value)
    assert (refused.value.status, refused.value.body) == (400, {"error": "invalid request body"})
    assert not WorkspaceSecret.objects.exists()


def test_set_for_a_missing_workspace_is_a_404(provisioner):
    with pytest.raises(ApiError) as refused:
        services.workspace_secret_set(workspace_id=uuid.uuid4(), key="K", value=VALUE)
    assert (refused.value.status, refused.value.body) == (404, {"error": "workspace not found"})


def test_delete_removes_the_row_and_restarts(workspace, provisioner, django_capture_on_commit_callbacks):
    services.workspace_secret_set(workspace_id=workspace.id, key="K", value=VALUE)
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_secret_delete(workspace_id=workspace.id, key="K")
    assert not WorkspaceSecret.objects.exists()
    assert provisioner.restarts == [[str(workspace.id)]]


def test_delete_of_a_missing_key_is_a_404_without_restart(workspace, provisioner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApiError) as refused:
        services.workspace_secret_delete(workspace_id=workspace.id, key="NOPE")
    assert (refused.value.status, refused.value.body) == (404, {"error": "secret not found"})
    assert provisioner.restarts == []


def test_model_set_and_clear_use_the_model_provider_secret(workspace, provisioner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert services.workspace_model_set(workspace_id=workspace.id, model="openai:gpt-4o") == {
            "status": "saved", "model": "openai:gpt-4o"
        }
    assert _plaintext(WorkspaceSecret.objects.get(key="MODEL_PROVIDER")) == "openai:gpt-4o"

    with django_capture_on_commit_callbacks(execute=True):
        assert services.workspace_model_set(workspace_id=workspace.id, model="") == {"status": "cleared"}
    assert not WorkspaceSecret.objects.exists()
    assert provisioner.restarts == [[str(workspace.id)], [str(workspace.id)]]


def test_an_admin_save_that_moves_a_secret_restarts_both_workspaces(
    workspace, provisioner, django_capture_on_commit_callbacks
):
    other = Workspace.objects.create(name="QA", status="online")
    services.workspace_secret_set(workspace_id=workspace.id, key="K", value=VALUE)
    secret = WorkspaceSecret.objects.get()
    before = bytes(secret.encrypted_value)

    secret.workspace = other
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_secret_save(secret=secret, value=None)

    secret.refresh_from_db()
    assert secret.workspace_id == other.id and bytes(secret.encrypted_value) == before
    assert provisioner.restarts == [sorted([str(workspace.id), str(other.id)])]


# --- global secrets -------------------------------------------------------------------------------------

@pytest.fixture
def fleet():
    """One workspace per case of the global restart rule; True = must be restarted."""
    overriding = Workspace.objects.create(name="Overrides", status="online")
    _own_secret(overriding, "SHARED")
    return {
        Workspace.objects.create(name="Online", status="online"): True,
        Workspace.objects.create(name="Failed", status="failed"): True,
        Workspace.objects.create(name="Hibernated", status="hibernated"): True,  # the backend skips it
        Workspace.objects.create(name="Paused", status="paused"): False,
        Workspace.objects.create(name="Removed", status="removed"): False,
        Workspace.objects.create(name="External", status="online", runtime="external"): False,
        overriding: False,
    }


def _expected(fleet) -> list[str]:
    return sorted(str(w.id) for w, restart in fleet.items() if restart)


def test_global_set_restarts_every_inheriting_workspace(fleet, provisioner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.global_secret_set(key="SHARED", value=VALUE)
    assert provisioner.restarts == []
    for callback in callbacks:
        callback()
    assert provisioner.restarts == [_expected(fleet)]

    secret = GlobalSecret.objects.get(key="SHARED")
    assert VALUE.encode() not in bytes(secret.encrypted_value)
    assert _plaintext(secret) == VALUE


def test_global_set_twice_keeps_one_row(provisioner):
    services.global_secret_set(key="K", value="one")
    services.global_secret_set(key="K", value="two")
    assert _plaintext(GlobalSecret.objects.get()) == "two"


def test_global_delete_restarts_the_inheritors(fleet, provisioner, django_capture_on_commit_callbacks):
    services.global_secret_set(key="SHARED", value=VALUE)
    with django_capture_on_commit_callbacks(execute=True):
        services.global_secret_delete(key="SHARED")
    assert not GlobalSecret.objects.exists()
    assert provisioner.restarts == [_expected(fleet)]


def test_global_delete_of_a_missing_key_is_a_404(provisioner):
    with pytest.raises(ApiError) as refused:
        services.global_secret_delete(key="NOPE")
    assert (refused.value.status, refused.value.body) == (404, {"error": "secret not found"})


@pytest.mark.parametrize("key, value", [("", VALUE), ("A=B", VALUE), ("A\x00", VALUE), ("K", "")])
def test_global_set_rejects_unusable_keys_and_values(provisioner, key, value):
    with pytest.raises(ApiError) as refused:
        services.global_secret_set(key=key, value=value)
    assert (refused.value.status, refused.value.body) == (400, {"error": "invalid request body"})
    assert not GlobalSecret.objects.exists()


def test_a_global_change_with_no_inheritor_asks_for_no_restart(provisioner, django_capture_on_commit_callbacks):
    Workspace.objects.create(name="Paused", status="paused")
    with django_capture_on_commit_callbacks(execute=True):
        services.global_secret_set(key="K", value=VALUE)
    assert provisioner.restarts == []


def test_an_admin_rename_of_a_global_restarts_inheritors_of_both_keys(
    provisioner, django_capture_on_commit_callbacks
):
    services.global_secret_set(key="OLD", value=VALUE)
    overrides_new = Workspace.objects.create(name="Overrides NEW", status="online")
    overrides_old = Workspace.objects.create(name="Overrides OLD", status="online")
    _own_secret(overrides_new, "NEW")
    _own_secret(overrides_old, "OLD")
    secret = GlobalSecret.objects.get()

    secret.key = "NEW"
    with django_capture_on_commit_callbacks(execute=True):
        services.global_secret_save(secret=secret, value="renamed")

    # overrides_new loses the inherited OLD, overrides_old gains an inherited NEW: one restart each.
    assert provisioner.restarts == [sorted([str(overrides_new.id), str(overrides_old.id)])]
    assert _plaintext(GlobalSecret.objects.get(key="NEW")) == "renamed"


def test_a_failing_backend_does_not_undo_the_saved_secret(workspace, monkeypatch, django_capture_on_commit_callbacks):
    class Broken(RestartRecorder):
        def provisioned_workspace_ids(self):
            raise RuntimeError("backend down")

    use_backend(monkeypatch, Broken())
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_secret_set(workspace_id=workspace.id, key="K", value=VALUE)
    assert WorkspaceSecret.objects.filter(key="K").exists()
