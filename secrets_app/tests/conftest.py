"""Fixtures shared by the secrets tests."""

import pytest

from secrets_app import services
from workspaces.provisioners.base import Provisioner


class RestartRecorder(Provisioner):
    """A stand-in for the backends not built yet: records every restart it is asked for."""

    name = "recording"
    available = True

    def __init__(self):
        self.restarts: list[list[str]] = []

    def start(self, workspace, *, env):
        return None

    def stop(self, workspace):
        return None

    def restart_workspaces(self, workspace_ids):
        self.restarts.append(list(workspace_ids))

    @property
    def restarted(self) -> list[str]:
        """Every id asked for, in order, across calls."""
        return [workspace_id for call in self.restarts for workspace_id in call]


@pytest.fixture
def provisioner(monkeypatch) -> RestartRecorder:
    backend = RestartRecorder()
    monkeypatch.setattr(services, "get_provisioner", lambda: backend)
    return backend
