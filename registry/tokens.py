"""Credentials the platform derives for its own calls to agents.

The inbound secret is how an agent's A2A server tells the platform's proxy apart from anything
else that can reach its port (other local processes, a peer holding its URL): the platform
sends it in ``INBOUND_SECRET_HEADER`` on every call it forwards, and a runtime started with
``INBOUND_SECRET_ENV`` refuses calls that lack it (runtime ``server.py``). It is derived, not
stored: an HMAC of the workspace id under the platform's ``SECRET_KEY``, so the proxy needs no
lookup on its hot path, and rotating ``DJANGO_SECRET_KEY`` rotates every inbound secret (each
runtime picks up the new one at its next restart). Beyond the original, which sends nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

INBOUND_SECRET_HEADER = "X-Molecule-Inbound-Secret"
INBOUND_SECRET_ENV = "MOLECULE_INBOUND_SECRET"
_PURPOSE = b"molecule.a2a-inbound.v1:"


def inbound_secret(workspace_id) -> str:
    """The secret the platform presents to ``workspace_id``'s agent (64 hex characters)."""
    message = _PURPOSE + str(workspace_id).lower().encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()
