"""The provisioner port: what every backend (Docker, local processes, none) offers the platform.

Backends sit at the bottom of the import layers: they know models, settings and the file stores,
and nothing above them. Everything a start needs — the runtime's configuration, the freshly
minted token, the merged secrets and the platform's variables — is prepared by
:mod:`workspaces.provisioning` and handed over as a :class:`Launch`; a backend only decides
*where* the runtime runs (a process on a loopback port, a container on the workspace network)
and adds the variables that follow from that (``PORT``, ``WORKSPACE_CONFIG_PATH``…).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workspaces.filestores import FileStore, HostDirectoryStore

# The crash-loop back-off of restarts (spec §6.2 leaves it to the backend): 1 s doubling to 5 min,
# forgotten once a runtime stayed up a minute. Backends keep the count where the runtime is.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
STABLE_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Backoff:
    """Where a restart stands in a crash loop: the restarts so far and when the next may happen."""

    restarts: int = 0
    next_restart_at: float = 0.0

    @classmethod
    def after(cls, *, restarts: int, started_at: float, now: float) -> Backoff:
        """The back-off of the start that follows a runtime started at ``started_at`` after
        ``restarts`` quick restarts: reset when it stayed up long enough (not a crash loop)."""
        if started_at and now - started_at >= STABLE_AFTER_SECONDS:
            restarts = 0
        delay = min(BACKOFF_BASE_SECONDS * 2 ** restarts, BACKOFF_MAX_SECONDS)
        return cls(restarts=restarts + 1, next_restart_at=now + delay)

    def wait(self, now: float) -> float:
        return max(0.0, self.next_restart_at - now)


@dataclass(frozen=True)
class Launch:
    """One start of a runtime, as :mod:`workspaces.provisioning` prepared it (spec §16).

    ``env``: the merged secrets, then the platform's variables (``WORKSPACE_ID``,
    ``PLATFORM_URL``, ``MOLECULE_URL``, ``TIER``, ``PARENT_ID``, the inbound secret, the agent's
    git identity…); a backend adds where the runtime lives and never lets a secret override
    what the platform set. ``token``: the plaintext of the token just minted, written to
    ``/configs/.auth_token`` (0600). ``template``: copied into ``/configs`` when the workspace has
    no configuration of its own yet (CRLF→LF for scripts and Markdown in containers).
    ``config_yaml``: written as ``/configs/config.yaml`` when there is still none afterwards.
    """

    env: dict[str, str]
    token: str
    template: Path | None = None
    config_yaml: str = ""
    # Names in ``env`` set by the platform (secrets do not override them).
    platform_keys: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ManagedContainer:
    """A container the Docker backend reports to the orphan sweeper (spec §7.4 items 1–2).

    ``name`` is the container name without Docker's leading ``/`` (``ws-<id12>`` for workspace
    containers); ``managed`` says whether it carries the ``molecule.platform.managed=true`` label.
    """

    name: str
    managed: bool


class TerminalUnavailable(Exception):
    """No terminal can be opened: ``status`` and ``error`` are the answer (spec §18)."""

    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


class TerminalSession(ABC):
    """An interactive shell attached to a workspace's runtime (a PTY or a ``docker exec`` TTY).

    ``read`` blocks until output arrives and returns ``b""`` once the shell has exited; the
    WebSocket consumer runs it in a thread. ``close`` ends the shell and is idempotent.
    """

    @abstractmethod
    def read(self, max_bytes: int = 65536) -> bytes: ...

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def resize(self, cols: int, rows: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


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
    # True for backends with containers (the orphan container passes of spec §7.4).
    has_containers: bool = False
    unavailable_reason: str = ""
    unavailable_event_error: str = ""

    @abstractmethod
    def start(self, workspace, *, launch: Launch) -> None:
        """Start (or re-start) the runtime of ``workspace``; raises with the reason on failure."""

    @abstractmethod
    def stop(self, workspace) -> None:
        """Stop the runtime of ``workspace`` if it runs; never fails for one that does not."""

    def restart(self, workspace, *, prepare: Callable[[], Launch | None]) -> None:
        """Stop → ``prepare()`` → start (spec §6.2). ``prepare`` marks the row ``provisioning``
        and mints the token; it returns None when the row changed meanwhile (paused, removed…),
        and then nothing is started. Backends with bookkeeping across restarts (the local
        crash-loop back-off) override it."""
        self.stop(workspace)
        launch = prepare()
        if launch is not None:
            self.start(workspace, launch=launch)

    def remove(self, workspace) -> None:
        """Stop the runtime and drop what the backend keeps for it (containers, volumes); the
        workspace is gone for good. By default the same as :meth:`stop`."""
        self.stop(workspace)

    def restart_backoff_seconds(self, workspace_id) -> float:
        """Seconds a restart of ``workspace_id`` must still wait; 0 = now."""
        return 0.0

    def file_store(self, workspace) -> FileStore:
        """Where the workspace's files (``/configs``, ``/workspace``…) live for this backend."""
        return HostDirectoryStore(workspace.id)

    def assigned_url(self, workspace_id) -> str | None:
        """The URL this backend gave the workspace's runtime, if it gave one.

        The proxy's and discovery's SSRF filters trust exactly this URL (it points at a runtime
        we started ourselves, e.g. a loopback port); URLs reported by agents are still checked.
        """
        return None

    def url_seen_from(self, caller_id, url: str) -> str:
        """``url`` (a peer's registered URL) as the runtime of ``caller_id`` can reach it.

        Where a peer is reachable from depends on where the caller runs: a container reaches
        the platform host's loopback through the Docker host alias, a local process reaches it
        as registered, an external caller gets the URL as registered.
        """
        return url

    def internal_url(self, workspace_id) -> str | None:
        """Where peers on the workspace network reach this runtime (``http://ws-<id12>:8000``
        for containers), or None when the backend has no such network."""
        return None

    def live_workspace_ids(self) -> set[str]:
        """Ids (as strings) of workspaces whose runtime is alive; raises when it cannot tell.

        Only meaningful where ``runs_local_runtimes``; other backends know of no runtimes.
        """
        return set()

    def provisioned_workspace_ids(self) -> set[str]:
        """Ids (as strings) of the workspaces this backend started itself, running or not; raises
        when it cannot tell.

        Restarts go only to these, and the health sweep watches only these: a workspace that
        registered without us (an external agent, a stranger) has no runtime of ours to be
        missing. A backend that runs nothing has provisioned nothing.
        """
        return set()

    def exec_terminal(self, workspace) -> TerminalSession:
        """A shell in the workspace's runtime; raises :class:`TerminalUnavailable`."""
        raise TerminalUnavailable(503, "Docker not available")

    # --- containers only: the orphan container passes (spec §7.4) -----------------------------------

    def list_managed_containers(self) -> list[ManagedContainer]:
        """Every container named ``ws-*`` (running or stopped) and every container labelled
        ``molecule.platform.managed=true``; raises when the engine cannot be listed.
        A backend without containers has none."""
        return []

    def remove_orphan_container(self, container: ManagedContainer) -> None:
        """Stop and remove ``container`` together with the workspace volumes named after it;
        raises when the engine refuses (the sweeper logs it and goes on with the next one)."""
        raise RuntimeError(f"the {self.name!r} provisioner has no containers to remove")
