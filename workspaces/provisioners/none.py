"""The backend for a platform that cannot run workspaces itself (no Docker, no local runtime).

External workspaces still work; every other workspace is marked failed on create, with the
original platform's messages, and restart/resume answer 503.
"""

from __future__ import annotations

from workspaces.provisioners.base import Provisioner


class NoProvisioner(Provisioner):
    name = "none"
    available = False
    unavailable_reason = (
        "Docker not available — workspace containers require a Docker daemon or external provisioning."
    )
    unavailable_event_error = "Docker not available on this platform instance"

    def start(self, workspace, *, launch):
        raise RuntimeError("the 'none' provisioner cannot start workspaces")

    def stop(self, workspace):
        return None
