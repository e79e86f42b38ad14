"""The interface every provisioner backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Provisioner(ABC):
    """Starts and stops workspace runtimes.

    ``available`` says whether the backend can start runtimes at all; when it cannot, create
    marks workspaces failed with ``unavailable_reason`` and restart/resume answer 503.
    """

    name: str
    available: bool
    unavailable_reason: str = ""
    unavailable_event_error: str = ""

    @abstractmethod
    def start(self, workspace, *, env: dict[str, str]) -> None:
        """Start (or re-start) the runtime of ``workspace`` with ``env`` injected."""

    @abstractmethod
    def stop(self, workspace) -> None:
        """Stop the runtime of ``workspace`` if it runs; never fails for one that does not."""

    @abstractmethod
    def restart_workspaces(self, workspace_ids) -> None:
        """Ask for a restart of each workspace (secret changes, liveness); a no-op where nothing runs."""
