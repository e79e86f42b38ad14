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
    # True for backends that run runtimes on hosts we control (Docker, local processes): only
    # those can tell whether a workspace's runtime is alive (stale-token sweep, health sweep).
    runs_local_runtimes: bool = False
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

    def live_workspace_ids(self) -> set[str]:
        """Ids (as strings) of workspaces whose runtime is alive; raises when it cannot tell.

        Only meaningful where ``runs_local_runtimes``; other backends know of no runtimes.
        """
        return set()
