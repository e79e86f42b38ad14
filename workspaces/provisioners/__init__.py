"""The provisioner port: what starts and stops a workspace's runtime (see :mod:`.base`).

The backend is chosen by ``MOLECULE_PROVISIONER``: ``none``; ``docker`` (each workspace runs in a
container of its own with its tier's limits, :mod:`workspaces.provisioners.docker`); ``local``
(each workspace runs ``molecule-runtime`` as a subprocess on this machine,
:mod:`workspaces.provisioners.local`); or ``auto`` (the default), which picks ``docker`` when a
Docker engine answers, else ``local`` when the ``molecule-runtime`` executable is installed, else
``none`` (spec §16). In production (``MOLECULE_ENV=prod|production``) agents do not
run on the platform's machine unless ``MOLECULE_ALLOW_LOCAL_PROVISIONER=1``: settings refuse
``local`` and ``auto`` picks ``none``. Everything above talks to the interface in :mod:`.base`
through :func:`get_provisioner`, never to a backend directly; backends import nothing above them.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings

from workspaces.provisioners.base import (
    Launch,
    ManagedContainer,
    Provisioner,
    TerminalSession,
    TerminalUnavailable,
)
from workspaces.provisioners.docker import DockerProvisioner, docker_selected
from workspaces.provisioners.local import LocalProcessProvisioner, runtime_executable
from workspaces.provisioners.none import NoProvisioner

__all__ = ["Launch", "ManagedContainer", "Provisioner", "TerminalSession", "TerminalUnavailable", "get_provisioner"]

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def get_provisioner() -> Provisioner:
    choice = settings.MOLECULE_PROVISIONER
    if choice == "none":
        return NoProvisioner()
    if docker_selected():
        return DockerProvisioner()
    if choice == "local":
        return LocalProcessProvisioner()
    if choice == "auto":
        if settings.IS_PRODUCTION and not settings.MOLECULE_ALLOW_LOCAL_PROVISIONER:
            log.warning("MOLECULE_PROVISIONER=auto picks none with MOLECULE_ENV=%s: local runtimes need "
                        "MOLECULE_ALLOW_LOCAL_PROVISIONER=1 in production", settings.MOLECULE_ENV)
            return NoProvisioner()
        return LocalProcessProvisioner() if runtime_executable() else NoProvisioner()
    raise AssertionError(f"unhandled MOLECULE_PROVISIONER {choice!r}")  # settings only admits the above
