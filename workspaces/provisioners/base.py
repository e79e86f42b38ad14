"""The interface every provisioner backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class ManagedContainer:
    """A container the Docker backend reports to the orphan sweeper (spec §7.4 items 1–2).

    ``name`` is the container name without Docker's leading ``/`` (``ws-<id12>`` for workspace
    containers); ``managed`` says whether it carries the ``molecule.platform.managed=true`` label.
    """

    name: str
    managed: bool


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
    # True for backends whose ``live_workspace_ids`` is cheap and authoritative enough for the
    # container-health sweep (spec §7.4, every 15 s): Docker and local processes.
    health_sweep: bool = False
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
        """Ask for a restart of each workspace (secret changes, liveness); a no-op where nothing runs.

        This is the original's ``RestartByID`` (spec §6.2): the backend applies its skip rules
        (removed/paused/hibernated rows, runtime ``external``, a paused ancestor) and its
        per-workspace try-lock, and must not block its caller — slow work goes to a Celery task.
        It restarts only workspaces it provisioned itself (:meth:`provisioned_workspace_ids`):
        a runtime is never started for a workspace that merely registered. The liveness and
        health sweeps call it after their transaction commits.
        """

    def restart(self, workspace, *, env: dict[str, str], on_stopped) -> None:
        """The restart task's stop → ``on_stopped()`` → start (spec §6.2); no start when
        ``on_stopped`` returns False (the row changed meanwhile). Backends with bookkeeping
        across restarts (the local back-off) override it."""
        self.stop(workspace)
        if on_stopped() is False:
            return
        self.start(workspace, env=env)

    def restart_backoff_seconds(self, workspace_id) -> float:
        """Seconds the restart task must still wait before restarting ``workspace_id``; 0 = now."""
        return 0.0

    def assigned_url(self, workspace_id) -> str | None:
        """The URL this backend gave the workspace's runtime, if it gave one.

        The proxy's and discovery's SSRF filters trust exactly this URL (it points at a process
        we started ourselves, e.g. a loopback port); URLs reported by agents are still checked.
        """
        return None

    def live_workspace_ids(self) -> set[str]:
        """Ids (as strings) of workspaces whose runtime is alive; raises when it cannot tell.

        Only meaningful where ``runs_local_runtimes``; other backends know of no runtimes.
        """
        return set()

    def provisioned_workspace_ids(self) -> set[str]:
        """Ids (as strings) of the workspaces this backend started itself, running or not; raises
        when it cannot tell.

        The sweeps restart only these, and the health sweep watches only these: a workspace
        that registered without us (an external agent, a stranger) has no runtime of ours to
        be missing. A backend that runs nothing has provisioned nothing.
        """
        return set()

    # --- Docker only: the orphan container passes (spec §7.4) ---------------------------------------
    # The sweeps call these only when ``name == "docker"``; other backends never reach them.

    def list_managed_containers(self) -> list[ManagedContainer]:
        """Every container named ``ws-*`` (running or stopped) and every container labelled
        ``molecule.platform.managed=true``; raises when the engine cannot be listed.
        A backend without containers has none."""
        return []

    def remove_orphan_container(self, container: ManagedContainer) -> None:
        """Stop and remove ``container`` together with the workspace volumes named after it;
        raises when the engine refuses (the sweeper logs it and goes on with the next one)."""
        raise RuntimeError(f"the {self.name!r} provisioner has no containers to remove")
