"""Writes of secrets (spec §12): set/delete per workspace and global, the model, key rotation.

Each write is atomic and, once it commits, asks for a restart of the workspaces whose env it
changed (``workspaces.provisioning.request_restarts``, the original's async ``RestartByID``): the
workspace itself for its own secrets; for a global key every workspace that is not removed,
paused or external and has no value of its own for that key. The restart task applies the rest
of the rules (hibernated rows, paused ancestors, try-lock). Values are encrypted before they reach the database and never logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from molecule_site.errors import ApiError
from secrets_app.crypto import DecryptionError, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from secrets_app.selectors import MODEL_SECRET_KEY, decrypt_secret
from workspaces.models import EXTERNAL_RUNTIME, Workspace, WorkspaceStatus
from workspaces.provisioning import REASON_SECRETS_CHANGED, request_restarts

INVALID_BODY = "invalid request body"
NOT_FOUND = "secret not found"
_UPSERT_FIELDS = ["encrypted_value", "encryption_version", "updated_at"]


def is_valid_secret_key(key) -> bool:
    """Non-empty (the spec's only rule), and usable as an env var name: no ``=`` and no NUL."""
    return isinstance(key, str) and bool(key) and "=" not in key and "\x00" not in key


def _check(key, value) -> None:
    if not is_valid_secret_key(key) or not isinstance(value, str) or not value:
        raise ApiError(INVALID_BODY)


# --- restarts -------------------------------------------------------------------------------------------

def _restart_on_commit(workspace_ids) -> None:
    ids = sorted({str(workspace_id) for workspace_id in workspace_ids})
    if not ids:
        return

    # robust: the secret is saved whatever the backend does; a failure to restart is logged.
    transaction.on_commit(lambda: request_restarts(ids, reason=REASON_SECRETS_CHANGED), robust=True)


def _restart_inheritors_on_commit(keys) -> None:
    """Restart every workspace that inherits one of the global ``keys`` (spec §12)."""
    ids: set[uuid.UUID] = set()
    for key in set(keys):
        ids.update(
            Workspace.objects.exclude(status__in=[WorkspaceStatus.REMOVED, WorkspaceStatus.PAUSED])
            .exclude(runtime=EXTERNAL_RUNTIME)
            .exclude(Exists(WorkspaceSecret.objects.filter(workspace=OuterRef("pk"), key=key)))
            .values_list("id", flat=True)
        )
    _restart_on_commit(ids)


# --- workspace secrets ----------------------------------------------------------------------------------

def _upsert(model, row, unique_fields: list[str]) -> None:
    """INSERT … ON CONFLICT DO UPDATE, as the original: concurrent sets of one key cannot collide."""
    model.objects.bulk_create([row], update_conflicts=True, unique_fields=unique_fields, update_fields=_UPSERT_FIELDS)


@transaction.atomic
def workspace_secret_set(*, workspace_id: uuid.UUID, key: str, value: str) -> None:
    """Create or replace a workspace's secret, then restart that workspace."""
    _check(key, value)
    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise ApiError("workspace not found", status=404)
    stored, version = encrypt(value)
    _upsert(
        WorkspaceSecret,
        WorkspaceSecret(workspace_id=workspace_id, key=key, encrypted_value=stored, encryption_version=version),
        ["workspace", "key"],
    )
    _restart_on_commit([workspace_id])


@transaction.atomic
def workspace_secret_delete(*, workspace_id: uuid.UUID, key: str) -> None:
    """Delete a workspace's secret (404 when it has none), then restart that workspace."""
    deleted, _ = WorkspaceSecret.objects.filter(workspace_id=workspace_id, key=key).delete()
    if not deleted:
        raise ApiError(NOT_FOUND, status=404)
    _restart_on_commit([workspace_id])


@transaction.atomic
def workspace_model_set(*, workspace_id: uuid.UUID, model: str) -> dict:
    """``PUT /workspaces/:id/model``: the ``MODEL_PROVIDER`` secret; empty clears it. Both restart."""
    if not model:
        WorkspaceSecret.objects.filter(workspace_id=workspace_id, key=MODEL_SECRET_KEY).delete()
        _restart_on_commit([workspace_id])
        return {"status": "cleared"}
    workspace_secret_set(workspace_id=workspace_id, key=MODEL_SECRET_KEY, value=model)
    return {"status": "saved", "model": model}


@transaction.atomic
def workspace_secret_save(*, secret: WorkspaceSecret, value: str | None) -> WorkspaceSecret:
    """Save a secret edited as a whole (operator admin): ``value`` replaces the stored one if given.

    Restarts the workspace it belongs to, and the one it belonged to if the operator moved it.
    """
    previous = None
    if not secret._state.adding:
        previous = WorkspaceSecret.objects.select_for_update().filter(pk=secret.pk).values_list(
            "workspace_id", flat=True
        ).first()
    if value:
        secret.encrypted_value, secret.encryption_version = encrypt(value)
    secret.save()
    _restart_on_commit({secret.workspace_id, previous} - {None})
    return secret


# --- global secrets -------------------------------------------------------------------------------------

@transaction.atomic
def global_secret_set(*, key: str, value: str) -> None:
    """Create or replace a global secret, then restart every workspace inheriting it."""
    _check(key, value)
    stored, version = encrypt(value)
    _upsert(GlobalSecret, GlobalSecret(key=key, encrypted_value=stored, encryption_version=version), ["key"])
    _restart_inheritors_on_commit([key])


@transaction.atomic
def global_secret_delete(*, key: str) -> None:
    """Delete a global secret (404 when absent), then restart every workspace that inherited it."""
    deleted, _ = GlobalSecret.objects.filter(key=key).delete()
    if not deleted:
        raise ApiError(NOT_FOUND, status=404)
    _restart_inheritors_on_commit([key])


@transaction.atomic
def global_secret_save(*, secret: GlobalSecret, value: str | None) -> GlobalSecret:
    """Save a global secret edited as a whole (operator admin); a rename restarts both keys' inheritors."""
    keys = {secret.key}
    if not secret._state.adding:
        keys.update(GlobalSecret.objects.select_for_update().filter(pk=secret.pk).values_list("key", flat=True))
    if value:
        secret.encrypted_value, secret.encryption_version = encrypt(value)
    secret.save()
    _restart_inheritors_on_commit(keys)
    return secret


# --- key rotation ---------------------------------------------------------------------------------------

class RotationError(Exception):
    """Rotation refused; nothing was changed. The message names rows and keys, never values."""


@dataclass(frozen=True)
class RotationResult:
    workspace_secrets: int
    global_secrets: int
    dry_run: bool


def _label(row) -> str:
    if isinstance(row, WorkspaceSecret):
        return f"workspace secret {row.pk} (workspace {row.workspace_id}, key {row.key!r})"
    return f"global secret {row.pk} (key {row.key!r})"


def secrets_rotate_key(*, new_key: bytes, old_key: bytes | None = None, dry_run: bool = False) -> RotationResult:
    """Re-encrypt every workspace and global secret under ``new_key`` in one transaction.

    All rows are locked, decrypted with ``old_key`` (default: the configured key), re-encrypted and
    written; then each row is read back and must decrypt with ``new_key`` to its old plaintext
    before the transaction commits. Any row the old key cannot read aborts the whole rotation
    with a :class:`RotationError` naming those rows. ``dry_run`` does all of it but the write.
    Version-0 (plaintext) rows are encrypted too.
    """
    old_key = old_key or settings.SECRETS_KEY_BYTES
    with transaction.atomic():
        rows = {
            WorkspaceSecret: list(WorkspaceSecret.objects.select_for_update().order_by("pk")),
            GlobalSecret: list(GlobalSecret.objects.select_for_update().order_by("pk")),
        }
        plaintexts: dict[tuple[type, uuid.UUID], str] = {}
        unreadable: list[str] = []
        for model, model_rows in rows.items():
            for row in model_rows:
                try:
                    plaintexts[model, row.pk] = decrypt_secret(row.encrypted_value, row.encryption_version, old_key)
                except DecryptionError:
                    unreadable.append(_label(row))
        if unreadable:
            raise RotationError(
                f"cannot decrypt {len(unreadable)} secret(s) with the current key; nothing was changed: "
                + "; ".join(unreadable)
            )

        for model, model_rows in rows.items():
            for row in model_rows:
                row.encrypted_value, row.encryption_version = encrypt(plaintexts[model, row.pk], new_key)
            if not dry_run:
                # bulk_update leaves updated_at alone: the values did not change.
                model.objects.bulk_update(model_rows, ["encrypted_value", "encryption_version"], batch_size=500)

        for model, model_rows in rows.items():
            if dry_run:
                stored = {row.pk: (row.encrypted_value, row.encryption_version) for row in model_rows}
            else:  # read back what was written
                stored = {
                    pk: (ciphertext, version)
                    for pk, ciphertext, version in model.objects.filter(pk__in=[row.pk for row in model_rows])
                    .values_list("pk", "encrypted_value", "encryption_version")
                }
            for row in model_rows:
                try:
                    ok = row.pk in stored and decrypt_secret(*stored[row.pk], new_key) == plaintexts[model, row.pk]
                except DecryptionError:
                    ok = False
                if not ok:
                    raise RotationError(f"verification failed for {_label(row)}; nothing was changed")
    return RotationResult(
        workspace_secrets=len(rows[WorkspaceSecret]), global_secrets=len(rows[GlobalSecret]), dry_run=dry_run
    )
