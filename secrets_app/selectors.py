"""Reads of secrets (spec §12): metadata listings, the merged env, the model secret.

Listings select metadata columns only, so a value never even leaves the database for them.
Decrypting is done here for the merged map (``/secrets/values``, provisioning) and the model;
a value is never logged, and a failure names scope and key, never what was stored.
"""

from __future__ import annotations

import logging
import uuid

from django.db.models import Exists, OuterRef

from molecule_site.wire import rfc3339
from secrets_app.crypto import AES_GCM_VERSION, PLAINTEXT_VERSION, DecryptionError, decrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret

log = logging.getLogger(__name__)

GLOBAL_SCOPE = "global"
WORKSPACE_SCOPE = "workspace"
MODEL_SECRET_KEY = "MODEL_PROVIDER"
_METADATA = ("key", "created_at", "updated_at")


class SecretDecryptError(Exception):
    """A secret of the merged env cannot be decrypted; provisioning must not go on without it.

    ``str()`` is the original's provisioning error exactly (``failed to decrypt global secret`` /
    ``failed to decrypt workspace secret``), so a provisioner can report it as the
    ``WORKSPACE_PROVISION_FAILED`` error as is. ``scope`` and ``keys`` say which rows failed.
    """

    def __init__(self, scope: str, keys: list[str]):
        super().__init__(f"failed to decrypt {scope} secret")
        self.scope = scope
        self.keys = keys


def decrypt_secret(stored, version: int, key: bytes | None = None) -> str:
    """``crypto.decrypt`` that also refuses an ``encryption_version`` other than 0 or 1 (spec §12)."""
    if version not in (PLAINTEXT_VERSION, AES_GCM_VERSION):
        raise DecryptionError(f"unknown encryption_version {version}")
    return decrypt(stored, version, key)


# --- listings (never values) -------------------------------------------------------------------------

def _item(row: dict, scope: str) -> dict:
    return {
        "key": row["key"],
        "has_value": True,
        "scope": scope,
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def workspace_secret_listing(workspace_id: uuid.UUID) -> list[dict]:
    """``GET /workspaces/:id/secrets``: the workspace's keys, then the globals it does not override."""
    own = WorkspaceSecret.objects.filter(workspace_id=workspace_id)
    inherited = GlobalSecret.objects.exclude(Exists(own.filter(key=OuterRef("key"))))
    return [
        *(_item(row, WORKSPACE_SCOPE) for row in own.order_by("key").values(*_METADATA)),
        *(_item(row, GLOBAL_SCOPE) for row in inherited.order_by("key").values(*_METADATA)),
    ]


def global_secret_listing() -> list[dict]:
    """``GET /settings/secrets`` (= ``/admin/secrets``); the original orders the keys differently here."""
    return [
        {
            "key": row["key"],
            "has_value": True,
            "created_at": rfc3339(row["created_at"]),
            "updated_at": rfc3339(row["updated_at"]),
            "scope": GLOBAL_SCOPE,
        }
        for row in GlobalSecret.objects.order_by("key").values(*_METADATA)
    ]


# --- values ----------------------------------------------------------------------------------------------

def _decrypt_rows(rows, scope: str) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    failed: list[str] = []
    for key, stored, version in rows:
        try:
            values[key] = decrypt_secret(stored, version)
        except DecryptionError:
            log.error("cannot decrypt %s secret %s", scope, key)
            failed.append(key)
    return values, failed


def merged_secret_values(workspace_id: uuid.UUID) -> tuple[dict[str, str], list[str]]:
    """Globals overridden by the workspace's own values, and the ``scope:KEY`` of every failure.

    Every row is tried, so the caller can name all failures at once; a failing global counts even
    when the workspace overrides it, as in the original (it decrypts globals before merging).
    """
    fields = ("key", "encrypted_value", "encryption_version")
    global_values, global_failed = _decrypt_rows(
        GlobalSecret.objects.order_by("key").values_list(*fields), GLOBAL_SCOPE
    )
    own_values, own_failed = _decrypt_rows(
        WorkspaceSecret.objects.filter(workspace_id=workspace_id).order_by("key").values_list(*fields),
        WORKSPACE_SCOPE,
    )
    failed = [f"{GLOBAL_SCOPE}:{key}" for key in global_failed] + [f"{WORKSPACE_SCOPE}:{key}" for key in own_failed]
    return {**global_values, **own_values}, failed


def merged_env(workspace) -> dict[str, str]:
    """The secrets a workspace's runtime gets as env: globals first, its own values override.

    Raises :class:`SecretDecryptError` (globals checked first) rather than return a partial env.
    """
    env, failed = merged_secret_values(workspace.pk)
    for scope in (GLOBAL_SCOPE, WORKSPACE_SCOPE):
        keys = [item.split(":", 1)[1] for item in failed if item.startswith(f"{scope}:")]
        if keys:
            raise SecretDecryptError(scope, keys)
    return env


def workspace_model(workspace_id: uuid.UUID) -> str | None:
    """The workspace's ``MODEL_PROVIDER`` secret; raises ``DecryptionError`` when unreadable."""
    row = (
        WorkspaceSecret.objects.filter(workspace_id=workspace_id, key=MODEL_SECRET_KEY)
        .values_list("encrypted_value", "encryption_version")
        .first()
    )
    if row is None:
        return None
    return decrypt_secret(*row)
