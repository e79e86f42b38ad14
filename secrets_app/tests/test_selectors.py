"""Secret reads: metadata-only listings, the merged env and its refusal to be partial."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from secrets_app import selectors
from secrets_app.crypto import DecryptionError, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

OTHER_KEY = bytes(range(32))  # not the configured key


def _stored(value: str, key: bytes | None = None) -> dict:
    ciphertext, version = encrypt(value, key)
    return {"encrypted_value": ciphertext, "encryption_version": version}


def _own(workspace, key, value, crypto_key=None):
    return WorkspaceSecret.objects.create(workspace=workspace, key=key, **_stored(value, crypto_key))


def _global(key, value, crypto_key=None):
    return GlobalSecret.objects.create(key=key, **_stored(value, crypto_key))


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Dev")


def test_listing_is_own_keys_then_inherited_globals_and_never_reads_values(workspace):
    _global("B_SHARED", "global-b")
    _global("A_OVERRIDDEN", "global-a")
    _own(workspace, "Z_OWN", "own-z")
    _own(workspace, "A_OVERRIDDEN", "own-a")
    _own(Workspace.objects.create(name="Other"), "NOT_MINE", "other")

    with CaptureQueriesContext(connection) as queries:
        listing = selectors.workspace_secret_listing(workspace.id)

    assert [(item["key"], item["scope"]) for item in listing] == [
        ("A_OVERRIDDEN", "workspace"), ("Z_OWN", "workspace"), ("B_SHARED", "global"),
    ]
    assert all(list(item) == ["key", "has_value", "scope", "created_at", "updated_at"] for item in listing)
    assert all(item["has_value"] is True and item["created_at"].endswith("Z") for item in listing)
    assert not any("encrypted_value" in query["sql"] for query in queries.captured_queries)


def test_global_listing_has_the_global_shape_and_never_reads_values():
    _global("B", "b")
    _global("A", "a")
    with CaptureQueriesContext(connection) as queries:
        listing = selectors.global_secret_listing()
    assert [item["key"] for item in listing] == ["A", "B"]
    assert list(listing[0]) == ["key", "has_value", "created_at", "updated_at", "scope"]
    assert listing[0]["scope"] == "global"
    assert not any("encrypted_value" in query["sql"] for query in queries.captured_queries)


def test_merged_env_is_globals_overridden_by_the_workspace(workspace):
    _global("SHARED", "global")
    _global("OVERRIDDEN", "global")
    _own(workspace, "OVERRIDDEN", "workspace")
    _own(workspace, "OWN", "workspace-only")
    assert selectors.merged_env(workspace) == {"SHARED": "global", "OVERRIDDEN": "workspace", "OWN": "workspace-only"}


def test_plaintext_version_zero_rows_stay_readable(workspace):
    GlobalSecret.objects.create(key="LEGACY", encrypted_value=b"plain", encryption_version=0)
    assert selectors.merged_env(workspace) == {"LEGACY": "plain"}


def test_merged_values_name_every_failure_by_scope(workspace):
    _global("GOOD", "g")
    _global("BAD_GLOBAL", "x", OTHER_KEY)
    _own(workspace, "BAD_OWN", "y", OTHER_KEY)
    _own(workspace, "FINE", "f")
    GlobalSecret.objects.create(key="FUTURE", encrypted_value=b"whatever", encryption_version=2)

    values, failed = selectors.merged_secret_values(workspace.id)

    assert failed == ["global:BAD_GLOBAL", "global:FUTURE", "workspace:BAD_OWN"]
    assert values == {"GOOD": "g", "FINE": "f"}


def test_merged_env_refuses_a_partial_env_naming_global_first(workspace):
    _global("BAD_GLOBAL", "x", OTHER_KEY)
    _own(workspace, "BAD_OWN", "y", OTHER_KEY)
    with pytest.raises(selectors.SecretDecryptError) as failed:
        selectors.merged_env(workspace)
    assert str(failed.value) == "failed to decrypt global secret"
    assert (failed.value.scope, failed.value.keys) == ("global", ["BAD_GLOBAL"])


def test_merged_env_names_a_failing_workspace_secret(workspace):
    _global("GOOD", "g")
    _own(workspace, "BAD_OWN", "y", OTHER_KEY)
    with pytest.raises(selectors.SecretDecryptError) as failed:
        selectors.merged_env(workspace)
    assert str(failed.value) == "failed to decrypt workspace secret"
    assert (failed.value.scope, failed.value.keys) == ("workspace", ["BAD_OWN"])


def test_a_failing_global_counts_even_when_overridden(workspace):
    _global("K", "x", OTHER_KEY)
    _own(workspace, "K", "own")
    with pytest.raises(selectors.SecretDecryptError):
        selectors.merged_env(workspace)


def test_workspace_model_reads_model_provider_only(workspace):
    assert selectors.workspace_model(workspace.id) is None
    _global("MODEL_PROVIDER", "global-model")
    assert selectors.workspace_model(workspace.id) is None
    _own(workspace, "MODEL_PROVIDER", "anthropic:claude")
    assert selectors.workspace_model(workspace.id) == "anthropic:claude"


def test_workspace_model_raises_on_an_unreadable_value(workspace):
    _own(workspace, "MODEL_PROVIDER", "m", OTHER_KEY)
    with pytest.raises(DecryptionError):
        selectors.workspace_model(workspace.id)
