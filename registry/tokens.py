"""Workspace credentials: the bearer tokens agents present, and the secret the platform presents.

**Bearer tokens** (spec §2.1): 32 random bytes, base64url; the row keeps only the sha256 digest
and the first 8 characters. Minting, revoking and digesting live here, below the services that
use them (registration, provisioning's issue-and-inject, the token routes, the admin).

**The inbound secret.**
The inbound secret is how an agent's A2A server tells the platform's proxy apart from anything
else that can reach its port (other local processes, a peer holding its URL): the platform
sends it in ``INBOUND_SECRET_HEADER`` on every call it forwards, and a runtime started with
``INBOUND_SECRET_ENV`` refuses calls that lack it (runtime ``server.py``). It is derived, not
stored: an HMAC of the workspace id under the platform's ``SECRET_KEY``, so the proxy needs no
lookup on its hot path, and rotating ``DJANGO_SECRET_KEY`` rotates every inbound secret (each
runtime picks up the new one at its next restart). Beyond the original, which sends nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from molecule_site import adb
from registry.models import WorkspaceAuthToken
from workspaces.models import Workspace

INBOUND_SECRET_HEADER = "X-Molecule-Inbound-Secret"
INBOUND_SECRET_ENV = "MOLECULE_INBOUND_SECRET"
_PURPOSE = b"molecule.a2a-inbound.v1:"


def inbound_secret(workspace_id) -> str:
    """The secret the platform presents to ``workspace_id``'s agent (64 hex characters)."""
    message = _PURPOSE + str(workspace_id).lower().encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


# --- bearer tokens ------------------------------------------------------------------------------------

def token_digest(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


TOKEN_BYTES = 32
TOKEN_PREFIX_LENGTH = 8


def _new_token() -> tuple[str, bytes, str]:
    """``(plaintext, sha256 digest, prefix)``: 32 random bytes, base64url without padding (43 chars)."""
    plaintext = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()
    return plaintext, token_digest(plaintext), plaintext[:TOKEN_PREFIX_LENGTH]


@transaction.atomic
def token_mint(*, workspace: Workspace) -> tuple[WorkspaceAuthToken, str]:
    """Create a live token for ``workspace`` and return it with its plaintext.

    The plaintext exists only in the return value; the row keeps its sha256 digest and first 8
    characters.
    """
    plaintext, digest, prefix = _new_token()
    token = WorkspaceAuthToken.objects.create(workspace=workspace, token_hash=digest, prefix=prefix)
    return token, plaintext


_MINT_SQL = """
INSERT INTO workspace_auth_tokens (id, workspace_id, token_hash, prefix, created_at)
VALUES (%s, %s, %s, %s, clock_timestamp())
"""


async def atoken_mint(*, workspace_id, conn) -> str:
    """:func:`token_mint` on the async driver, inside the caller's transaction ``conn``."""
    plaintext, digest, prefix = _new_token()
    await adb.execute(_MINT_SQL, [uuid.uuid4(), workspace_id, digest, prefix], conn=conn)
    return plaintext


def token_revoke(*, tokens: QuerySet[WorkspaceAuthToken]) -> int:
    """Revoke the live tokens among ``tokens``; return how many were revoked.

    One conditional UPDATE, so tokens already revoked keep their original ``revoked_at``.
    """
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
