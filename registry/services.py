"""Writes for the registry: workspace bearer tokens (spec §2.1)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.db import connection, transaction
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

    One statement finds the token and records ``last_used_at``: tokens of removed workspaces
    never match, and any failure collapses into None, as in the original.
    """
    from registry.selectors import as_uuid, token_digest

    if not token:
        return None
    bound = ""
    params: list = [token_digest(token)]
    if workspace_id is not None:
        parsed = as_uuid(workspace_id)
        if parsed is None:
            return None
        bound = "AND t.workspace_id = %s"
        params.append(parsed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE workspace_auth_tokens AS t SET last_used_at = clock_timestamp()
            FROM workspaces AS w
            WHERE t.token_hash = %s AND t.revoked_at IS NULL AND w.id = t.workspace_id
              AND w.status <> 'removed' {bound}
            RETURNING t.id, t.workspace_id
            """,
            params,
        )
        row = cursor.fetchone()
    return None if row is None else WorkspaceAuthToken(id=row[0], workspace_id=row[1])
