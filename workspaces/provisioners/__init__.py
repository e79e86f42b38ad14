"""Provisioner backends: what starts and stops a workspace's runtime.

The backend is chosen by ``MOLECULE_PROVISIONER``: ``none``, or ``auto`` (the default) which
picks the best backend this build can run — today only ``none``, since the Docker and
local-process backends are not part of this build yet. Services talk to the interface below and
never to a backend directly.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from workspaces.provisioners.base import Provisioner
from workspaces.provisioners.none import NoProvisioner

__all__ = ["Provisioner", "get_provisioner"]


@lru_cache(maxsize=1)
def get_provisioner() -> Provisioner:
    choice = settings.MOLECULE_PROVISIONER
    if choice in {"auto", "none"}:
        return NoProvisioner()
    raise AssertionError(f"unhandled MOLECULE_PROVISIONER {choice!r}")  # settings only admits the above
