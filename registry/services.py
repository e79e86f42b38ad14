"""Writes for the registry: workspace bearer tokens (spec §2.1)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from registry.models import WorkspaceAuthToken
from workspaces.models import Workspace

TOKEN_BYTES = 32
TOKEN_PREFIX_LENGTH = 8


@transaction.atomic
def token_mint(*, workspace: Workspace) -> tuple[WorkspaceAuthToken, str]:
    """Create a live token for ``workspace`` and return it with its plaintext.

    The plaintext (32 random bytes, base64url without padding: 43 characters) exists only in
    the return value; the row keeps its sha256 digest and first 8 characters.
    """
    plaintext = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()
    token = WorkspaceAuthToken.objects.create(
        workspace=workspace,
        token_hash=hashlib.sha256(plaintext.encode()).digest(),
        prefix=plaintext[:TOKEN_PREFIX_LENGTH],
    )
    return token, plaintext


def token_revoke(*, tokens: QuerySet[WorkspaceAuthToken]) -> int:
    """Revoke the live tokens among ``tokens``; return how many were revoked.

    One conditional UPDATE, so tokens already revoked keep their original ``revoked_at``.
    """
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_validate(*, token: str, workspace_id=None) -> WorkspaceAuthToken | None:
    """The live token matching ``token`` (bound to ``workspace_id`` when given), or None.

    Any failure collapses into None, as in the original; a match records ``last_used_at``
    (best effort: a failed update must not fail the request it authenticates).
    """
    from registry.selectors import as_uuid, token_find_live

    found = token_find_live(token)
    if found is None:
        return None
    if workspace_id is not None and found.workspace_id != as_uuid(workspace_id):
        return None
    try:
        WorkspaceAuthToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
    except Exception:  # noqa: BLE001 - see docstring
        pass
    return found
