"""Fixtures shared by the secrets tests."""

import pytest

from molecule_site.tests.backends import use_backend
from workspaces import provisioning
from workspaces.models import Workspace
from workspaces.provisioners.base import Provisioner


class RestartRecorder(Provisioner):
    """A backend that provisioned every workspace, recording the restarts asked of it: each
    ``request_restarts`` call (it asks the backend what it provisioned once) is one group of
    the ids it queued for the restart task."""

    name = "recording"
    available = True

    def __init__(self):
        self.restarts: list[list[str]] = []

    def start(self, workspace, *, launch):
        return None

    def stop(self, workspace):
        return None

    def provisioned_workspace_ids(self):
        self.restarts.append([])
        return {str(workspace_id) for workspace_id in Workspace.objects.values_list("id", flat=True)}

    def queued(self, workspace_id, **_options):
        self.restarts[-1].append(workspace_id)

    @property
    def restarted(self) -> list[str]:
        """Every id asked for, in order, across calls."""
        return [workspace_id for call in self.restarts for workspace_id in call]


@pytest.fixture
def provisioner(monkeypatch) -> RestartRecorder:
    backend = RestartRecorder()
    use_backend(monkeypatch, backend)
    monkeypatch.setattr(provisioning.restart_workspace, "delay", backend.queued)
    return backend
