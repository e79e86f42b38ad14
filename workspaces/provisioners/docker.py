"""The Docker backend: each workspace's runtime in a container of its own (spec §16).

Per workspace (id12 = the first 12 characters of its UUID)::

    ws-<id12>                  the container: the runtime image of the workspace's runtime, on the
                               network molecule-monorepo-net (alias ws-<id12>), port 8000
                               published on 127.0.0.1:<free port>, restart policy unless-stopped
    ws-<id12>-configs          volume → /configs (config.yaml, system-prompt.md, skills/, .auth_token)
    ws-<full id>-workspace     volume → /workspace, unless workspace_dir + workspace_access bind a
                               host directory there instead (read_write, or read_only → :ro)

Containers and volumes carry ``molecule.platform.managed=true``, ``molecule.workspace_id`` and
``molecule.platform.instance`` (``MOLECULE_PLATFORM_INSTANCE``: by default derived from
MOLECULE_HOME). Several platforms may share one engine (``make run`` and the end-to-end tests on a
developer's machine): each sees, sweeps and restarts only its own containers, so one platform's
orphan sweep never takes another's workspaces for orphans and removes their volumes;
the container also says which loopback port it was given (``molecule.agent_port``), so the URLs
below come from one listing, without inspecting each container. The runtime registers
``http://localhost:<port>`` (:data:`ADVERTISED_HOST`), which is also :meth:`assigned_url`.

**Start** (a Celery task; :mod:`workspaces.provisioning` prepared the :class:`Launch`): the stale
container of the same name goes (force), the volumes are made, a free loopback port is chosen so
that ``AGENT_URL=http://localhost:<port>`` can be set before the container exists, the container
is created, ``/configs`` receives the template (only while the volume has nothing of its own but
a token; CRLF→LF for .sh/.py/.md), ``config.yaml`` when it still has none and ``.auth_token``
(0600, the runtime user's) in one archive, and only then does it start. Any engine failure
raises RuntimeError naming what failed; the whole start gives up after
``DOCKER_PROVISION_TIMEOUT_SECONDS`` (3 min).

**Tiers** (:func:`tier_plan`, ``TIERn_MEMORY_MB`` / ``TIERn_CPU_SHARES``): T1 read-only rootfs, a
noexec tmpfs /tmp and no /workspace; T2 (and anything unknown) 512 MiB / 1 CPU; T3 2 GiB / 2 CPU,
privileged with the host's PID namespace only when ``MOLECULE_ALLOW_PRIVILEGED_TIERS``; T4 4 GiB /
4 CPU, plus host network and the Docker socket only when ``MOLECULE_ALLOW_T4`` (otherwise it is
a T3 with T4's limits). Privileged containers run the runtime as root: privileges granted to
an unprivileged user would be unusable.

**The platform from inside**: ``PLATFORM_URL`` on a loopback host becomes
``host.docker.internal``, which each container's /etc/hosts maps to the network's gateway; the
launcher listens on that address too (``molecule_site.launcher``). Host-network containers
(T4) reach loopback directly and keep the URLs as they are.

**Images** are built here (``manage.py build_workspace_images``), one per runtime, and never
pulled: a missing image fails the start with the command that builds it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import secrets
import socket
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import docker.errors
from django.conf import settings
from docker.types import LogConfig, Mount

from molecule_site import docker_engine
from molecule_site.docker_engine import ENGINE_ERRORS, MANAGED_LABEL, EngineUnavailable
from workspaces.filestores import CONFIGS
from workspaces.models import WorkspaceAccess
from workspaces.provisioners.base import (
    Backoff,
    Launch,
    ManagedContainer,
    Provisioner,
    TerminalSession,
    TerminalUnavailable,
)
from workspaces.provisioners.docker_files import (
    INSTANCE_LABEL,
    TOKEN_FILE,
    TOKEN_MODE,
    WORKSPACE_LABEL,
    WORKSPACE_ROOT,
    Archive,
    DockerFileStore,
    Placement,
    add_tree,
    ensure_volume,
    image_uid,
    remove_volumes,
    scan_configs,
    template_files,
)

log = logging.getLogger(__name__)

CONTAINER_PREFIX = "ws-"
CONTAINER_PORT = 8000
LOOPBACK = "127.0.0.1"
# The host name of the URL a runtime registers (AGENT_URL) and of assigned_url: the published
# port is bound on 127.0.0.1, but registration refuses loopback IP literals outside dev mode and
# accepts ``localhost`` by name (registry.ssrf.register_url_problem), as for local processes.
ADVERTISED_HOST = "localhost"
DOCKER_HOST_ALIAS = "host.docker.internal"
PORT_LABEL = "molecule.agent_port"
NETWORK_LABEL = "molecule.network_mode"
TIER_LABEL = "molecule.tier"
# The crash-loop back-off travels with the container (a restart makes a new one): restarts so far,
# when this one started, when the next restart may happen.
RESTARTS_LABEL = "molecule.restarts"
STARTED_LABEL = "molecule.started_at"
NEXT_RESTART_LABEL = "molecule.next_restart_at"
RUNTIME_LABEL = "molecule.runtime"
CONFIG_FILE = "config.yaml"
DOCKER_SOCKET = "/var/run/docker.sock"
T1_TMPFS = "rw,noexec,nosuid,size=64m"
STOP_TIMEOUT_SECONDS = 10
START_ATTEMPTS = 3  # a chosen port taken before the engine binds it: choose again
PORT_TAKEN = ("port is already allocated", "address already in use")
# The URL lookups (assigned_url on the A2A proxy's path) read one listing of our containers,
# kept this long; a workspace missing from it triggers a re-read at most this often.
SNAPSHOT_SECONDS = 2.0
MISS_REFRESH_SECONDS = 0.5
ENGINE_DOWN_SECONDS = 5.0  # after a failed connect or lookup, answer "unknown" this long without retrying
# The URL lookups run on request paths (the A2A proxy): their own client, which gives up sooner.
LOOKUP_TIMEOUT_SECONDS = 3
LOG_CONFIG = LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"})
BUILD_TIMEOUT_SECONDS = 1800
TERMINAL_ENV = "MOLECULE_TERMINAL"


# --- names --------------------------------------------------------------------------------------------------

def container_name(workspace_id) -> str:
    return f"{CONTAINER_PREFIX}{str(workspace_id)[:12]}"


def config_volume_name(workspace_id) -> str:
    return f"{container_name(workspace_id)}-configs"


def workspace_volume_name(workspace_id) -> str:
    return f"{CONTAINER_PREFIX}{workspace_id}-workspace"


# --- images -------------------------------------------------------------------------------------------------

def runtime_dir() -> Path:
    """The runtime package: the images' build context (``runtime/Dockerfile``)."""
    return Path(settings.BASE_DIR) / "runtime"


def known_runtimes() -> tuple[str, ...]:
    """The runtimes that get an image of their own: one per adapter package of the runtime (a
    package ``claude_code`` is the runtime ``claude-code``)."""
    adapters = runtime_dir() / "molecule_runtime" / "adapters"
    if not adapters.is_dir():
        return (settings.WORKSPACE_DEFAULT_RUNTIME,)
    return tuple(sorted(p.name.replace("_", "-") for p in adapters.iterdir() if (p / "__init__.py").is_file()))


@dataclass(frozen=True)
class ImageSpec:
    """What a runtime's image installs beyond the runtime itself, from ``runtime/pyproject.toml``:
    its pip extra, and the Debian packages and npm CLIs of ``[tool.molecule.images.<runtime>]``."""

    extras: str
    apt: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()

    def buildargs(self) -> dict[str, str]:
        return {"EXTRAS": self.extras, "APT_PACKAGES": " ".join(self.apt), "NPM_PACKAGES": " ".join(self.npm)}

    def summary(self) -> str:
        parts = [f"extra {self.extras}" if self.extras else "no extras"]
        parts += [f"apt {' '.join(self.apt)}"] if self.apt else []
        parts += [f"npm {' '.join(self.npm)}"] if self.npm else []
        return "; ".join(parts)


def image_spec(runtime: str) -> ImageSpec:
    project = tomllib.loads((runtime_dir() / "pyproject.toml").read_text())
    extras = runtime if runtime in project["project"].get("optional-dependencies", {}) else ""
    extra_parts = project.get("tool", {}).get("molecule", {}).get("images", {}).get(runtime, {})
    return ImageSpec(extras=extras, apt=tuple(extra_parts.get("apt", ())), npm=tuple(extra_parts.get("npm", ())))


def image_name(runtime: str) -> str:
    return f"{settings.WORKSPACE_IMAGE_PREFIX}{runtime}:{settings.WORKSPACE_IMAGE_TAG}"


def image_for(runtime: str | None) -> str:
    """The image a workspace of ``runtime`` runs in; an unknown runtime gets the default's."""
    known = known_runtimes()
    return image_name(runtime if runtime in known else settings.WORKSPACE_DEFAULT_RUNTIME)


def docker_selected() -> bool:
    """Whether ``MOLECULE_PROVISIONER`` picks this backend: ``docker``, or ``auto`` while an engine
    answers (``auto`` then falls back to local processes, then none)."""
    choice = settings.MOLECULE_PROVISIONER
    return choice == "docker" or (choice == "auto" and docker_engine.answers())


def build_command(runtime: str) -> str:
    return f"python manage.py build_workspace_images --runtime {runtime}"


def build_image(client, runtime: str, *, progress: Callable[[str], None]) -> str:
    """Build ``runtime``'s image from ``runtime/Dockerfile`` (no pull: base images are local);
    ``progress`` gets each line of the build's output. Returns the tag; RuntimeError on failure."""
    tag = image_name(runtime)
    output = client.api.build(path=str(runtime_dir()), tag=tag, buildargs=image_spec(runtime).buildargs(), pull=False,
                              rm=True, forcerm=True, decode=True, labels={RUNTIME_LABEL: runtime},
                              timeout=BUILD_TIMEOUT_SECONDS)
    for chunk in output:
        if "error" in chunk:
            raise RuntimeError(f"building {tag} failed: {chunk['error'].strip()}")
        line = (chunk.get("stream") or chunk.get("status") or "").rstrip()
        if line:
            progress(line)
    return tag


# --- tiers and mounts -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TierPlan:
    """What a tier means for the container (spec §16, with this platform's switches)."""

    tier: int
    memory_mb: int          # 0: no cap
    cpu_shares: int         # 1024 = one CPU; 0: no cap
    read_only_rootfs: bool
    has_workspace: bool
    privileged: bool
    host_pid: bool
    host_network: bool
    docker_socket: bool

    def nano_cpus(self, host_cpus: int) -> int:
        """The CPU cap as NanoCPUs, at most the engine's CPU count: the engine refuses more
        (``Range of CPUs is from 0.01 to 2.00``), and a T3 on a 2-core host still starts."""
        if not self.cpu_shares:
            return 0
        return int(min(self.cpu_shares / 1024, max(host_cpus, 1)) * 1_000_000_000)


def tier_plan(tier) -> TierPlan:
    tier = tier if tier in (1, 2, 3, 4) else 2
    memory, shares = settings.TIER_LIMITS[tier]
    full = tier == 4 and settings.MOLECULE_ALLOW_T4
    privileged = full or (tier >= 3 and settings.MOLECULE_ALLOW_PRIVILEGED_TIERS)
    return TierPlan(tier=tier, memory_mb=memory, cpu_shares=shares, read_only_rootfs=tier == 1,
                    has_workspace=tier != 1, privileged=privileged, host_pid=privileged, host_network=full,
                    docker_socket=full)


def workspace_mount(workspace, plan: TierPlan) -> Mount | None:
    """``/workspace``: a bind of ``workspace_dir`` (or the global ``WORKSPACE_DIR``) with access
    read_write / read_only, else the workspace's named volume (access none keeps the volume even
    with a directory set); T1 has none."""
    if not plan.has_workspace:
        return None
    access = workspace.workspace_access or WorkspaceAccess.NONE
    directory = workspace.workspace_dir or settings.WORKSPACE_DIR
    if directory and access in (WorkspaceAccess.READ_WRITE, WorkspaceAccess.READ_ONLY):
        return Mount(target=WORKSPACE_ROOT, source=os.path.abspath(directory), type="bind",
                     read_only=access == WorkspaceAccess.READ_ONLY)
    return Mount(target=WORKSPACE_ROOT, source=workspace_volume_name(workspace.id), type="volume")


def placement(workspace) -> Placement:
    plan = tier_plan(workspace.tier)
    return Placement(workspace_id=str(workspace.id), container=container_name(workspace.id),
                     config_volume=config_volume_name(workspace.id), workspace_volume=workspace_volume_name(workspace.id),
                     workspace_mount=workspace_mount(workspace, plan),
                     image=image_for(workspace.runtime), as_root=plan.privileged)


# --- URLs -----------------------------------------------------------------------------------------------------

def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def docker_host_url(url: str) -> str:
    """``url`` with a loopback host (localhost, 127.0.0.0/8, ::1) replaced by
    ``host.docker.internal``; scheme, userinfo, port, path and query stay. Others unchanged."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return url
    if not host or not _is_loopback(host):
        return url
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = DOCKER_HOST_ALIAS + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))


def container_env(workspace, launch: Launch, *, port: int, plan: TierPlan) -> dict[str, str]:
    """``launch.env`` (merged secrets under the platform's variables), then what the container
    itself sets, which nothing in ``launch.env`` overrides."""
    env = {str(key): str(value) for key, value in launch.env.items()}
    platform_url = env.get("PLATFORM_URL") or settings.PLATFORM_URL
    molecule_url = env.get("MOLECULE_URL") or platform_url
    if not plan.host_network:
        platform_url, molecule_url = docker_host_url(platform_url), docker_host_url(molecule_url)
    env.update({
        "WORKSPACE_ID": str(workspace.id),
        "WORKSPACE_CONFIG_PATH": CONFIGS,
        "CONFIGS_DIR": CONFIGS,
        "WORKSPACE_DIR": WORKSPACE_ROOT,
        "PLUGINS_DIR": "/plugins",
        "PYTHONPATH": "/app",
        # On the host's network the runtime binds the chosen port on loopback itself.
        "PORT": str(port if plan.host_network else CONTAINER_PORT),
        "HOST": LOOPBACK if plan.host_network else "0.0.0.0",
        "AGENT_URL": f"http://{ADVERTISED_HOST}:{port}",
        "PLATFORM_URL": platform_url,
        "MOLECULE_URL": molecule_url,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _explain(exc: BaseException) -> str:
    """The engine's own words for a failure (never the request: it could hold the environment)."""
    if isinstance(exc, docker.errors.APIError):
        reason = exc.response.reason if exc.response is not None else ""
        return str(exc.explanation or reason or exc)[:300]
    return f"{type(exc).__name__}: {str(exc)[:300]}"


# --- what the engine shows of our containers -----------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    """One managed container as the last listing showed it."""

    name: str
    workspace_id: str
    running: bool
    port: int | None
    host_network: bool


def _seen_from(entry: dict) -> Seen | None:
    labels = entry.get("Labels") or {}
    workspace_id = labels.get(WORKSPACE_LABEL)
    if not workspace_id:
        return None
    try:
        port = int(labels.get(PORT_LABEL, ""))
    except ValueError:
        port = None
    names = entry.get("Names") or [""]
    return Seen(name=names[0].lstrip("/"), workspace_id=workspace_id, running=entry.get("State") == "running",
                port=port, host_network=labels.get(NETWORK_LABEL) == "host")


class _StartTimeout(Exception):
    pass


class DockerProvisioner(Provisioner):
    """Workspace runtimes as containers of a Docker engine (see the module docstring)."""

    name = "docker"
    available = True
    runs_local_runtimes = True
    health_sweep = True
    has_containers = True

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[int, object]] = {}  # kind → (pid, client)
        self._down_until = 0.0
        self._lookups_down_until = 0.0
        self._host_cpus: int | None = None
        self._seen: dict[str, Seen] = {}
        self._seen_at = -math.inf

    # --- the engine ---------------------------------------------------------------------------------------

    def client(self, kind: str = "default"):
        """The Docker client, connected on first use and reused (one per process: a client
        inherited across fork would share its sockets with the parent). ``kind="lookup"`` is
        the URL lookups' own client, with a shorter timeout."""
        with self._lock:
            pid, client = self._clients.get(kind, (None, None))
            if client is not None and pid == os.getpid():
                return client
            if time.monotonic() < self._down_until:
                raise EngineUnavailable("Docker engine not reachable")
            timeout = LOOKUP_TIMEOUT_SECONDS if kind == "lookup" else settings.DOCKER_TIMEOUT_SECONDS
            try:
                client = docker_engine.connect(timeout)
            except EngineUnavailable:
                self._down_until = time.monotonic() + ENGINE_DOWN_SECONDS
                raise
            self._clients[kind] = (os.getpid(), client)
            return client

    def api(self):
        return self.client().api

    def _cpus(self) -> int:
        if self._host_cpus is None:
            self._host_cpus = int(self.api().info().get("NCPU") or os.cpu_count() or 1)
        return self._host_cpus

    # --- start ------------------------------------------------------------------------------------------------

    def start(self, workspace, *, launch: Launch, backoff: Backoff = Backoff()) -> None:
        name = container_name(workspace.id)
        deadline = time.monotonic() + settings.DOCKER_PROVISION_TIMEOUT_SECONDS
        try:
            self._start(workspace, launch, deadline, backoff)
        except _StartTimeout:
            log.error("starting container %s took over %d s; given up", name, settings.DOCKER_PROVISION_TIMEOUT_SECONDS)
            raise RuntimeError(f"starting container {name} timed out after "
                               f"{settings.DOCKER_PROVISION_TIMEOUT_SECONDS} s") from None
        except ENGINE_ERRORS as exc:
            log.error("starting container %s failed: %s", name, _explain(exc))
            raise RuntimeError(f"could not start container {name}: {_explain(exc)}") from None
        finally:
            self._forget()
        log.info("started container %s (workspace %s, tier %s)", name, workspace.id, workspace.tier)

    @staticmethod
    def _in_time(deadline: float) -> None:
        if time.monotonic() > deadline:
            raise _StartTimeout

    def _start(self, workspace, launch: Launch, deadline: float, backoff: Backoff) -> None:
        api = self.api()
        for attempt in range(1, START_ATTEMPTS + 1):
            container, port = self._prepare(api, workspace, launch, deadline, backoff)
            try:
                self._in_time(deadline)
                api.start(container)
                return
            except docker.errors.APIError as exc:
                self._remove_container(api, container)
                if attempt < START_ATTEMPTS and any(text in _explain(exc) for text in PORT_TAKEN):
                    log.info("port %d was taken before container %s started; choosing another", port, container)
                    continue
                raise
            except BaseException:
                self._remove_container(api, container)
                raise

    def create_container(self, workspace, *, launch: Launch) -> str:
        """Everything :meth:`start` does but starting: the stale container replaced, volumes,
        the container created and its ``/configs`` written. Returns the container's id.

        For inspecting what a start would run where the engine cannot run it (privileged
        containers on an engine that lacks capabilities itself)."""
        deadline = time.monotonic() + settings.DOCKER_PROVISION_TIMEOUT_SECONDS
        try:
            return self._prepare(self.api(), workspace, launch, deadline, Backoff())[0]
        finally:
            self._forget()

    def _prepare(self, api, workspace, launch: Launch, deadline: float, backoff: Backoff) -> tuple[str, int]:
        self._in_time(deadline)
        plan = tier_plan(workspace.tier)
        where = placement(workspace)
        try:
            api.inspect_image(where.image)
        except docker.errors.ImageNotFound:
            runtime = where.image.removeprefix(settings.WORKSPACE_IMAGE_PREFIX).rsplit(":", 1)[0]
            raise RuntimeError(f"workspace image {where.image} not found: build it with `{build_command(runtime)}` "
                               "(make run builds the images when Docker is in use)") from None
        uid = 0 if where.as_root else image_uid(api, where.image)
        gateway = None if plan.host_network else docker_engine.ensure_network(self.client(), settings.WORKSPACE_NETWORK)
        self._remove_container(api, where.container)
        for volume in where.volumes:
            ensure_volume(api, volume, workspace.id)
        self._in_time(deadline)
        port = _free_loopback_port()
        container = self._create(api, workspace, launch, where=where, plan=plan, port=port, gateway=gateway,
                                 backoff=backoff)
        try:
            self._in_time(deadline)
            self._write_configs(api, container, launch, uid)
        except BaseException:
            self._remove_container(api, container)
            raise
        return container, port

    def _create(self, api, workspace, launch: Launch, *, where: Placement, plan: TierPlan, port: int,
                gateway: str | None, backoff: Backoff) -> str:
        mounts = where.mounts()
        if plan.docker_socket:
            mounts.append(Mount(target=DOCKER_SOCKET, source=DOCKER_SOCKET, type="bind"))
        host = {
            "mounts": mounts,
            "restart_policy": {"Name": "unless-stopped"},
            "log_config": LOG_CONFIG,
            "init": True,  # reaps what skills leave behind, forwards SIGTERM to the runtime
            "privileged": plan.privileged,
        }
        if plan.host_network:
            host["network_mode"] = "host"
        else:
            host.update(network_mode=settings.WORKSPACE_NETWORK, port_bindings={CONTAINER_PORT: (LOOPBACK, port)},
                        extra_hosts={DOCKER_HOST_ALIAS: gateway})
        if plan.read_only_rootfs:
            host.update(read_only=True, tmpfs={"/tmp": T1_TMPFS})
        if plan.memory_mb:
            # no swap on top: the limit is the limit
            host.update(mem_limit=plan.memory_mb * 1024 * 1024, memswap_limit=plan.memory_mb * 1024 * 1024)
        nano_cpus = plan.nano_cpus(self._cpus())
        if nano_cpus:
            host["nano_cpus"] = nano_cpus
        if plan.host_pid:
            host["pid_mode"] = "host"
        networking = None
        if not plan.host_network:
            networking = api.create_networking_config(
                {settings.WORKSPACE_NETWORK: api.create_endpoint_config(aliases=[where.container])})
        labels = {
            MANAGED_LABEL: "true",
            INSTANCE_LABEL: settings.MOLECULE_PLATFORM_INSTANCE,
            WORKSPACE_LABEL: str(workspace.id),
            PORT_LABEL: str(port),
            NETWORK_LABEL: "host" if plan.host_network else "bridge",
            TIER_LABEL: str(plan.tier),
            RESTARTS_LABEL: str(backoff.restarts),
            STARTED_LABEL: f"{time.time():.3f}",
            NEXT_RESTART_LABEL: f"{backoff.next_restart_at:.3f}",
        }
        created = api.create_container(
            where.image, name=where.container, hostname=None if plan.host_network else where.container,
            environment=container_env(workspace, launch, port=port, plan=plan), labels=labels,
            ports=None if plan.host_network else [CONTAINER_PORT], user="0" if plan.privileged else None,
            host_config=api.create_host_config(**host), networking_config=networking,
            stop_timeout=STOP_TIMEOUT_SECONDS, use_config_proxy=False,
        )
        return created["Id"]

    @staticmethod
    def _write_configs(api, container: str, launch: Launch, uid: int) -> None:
        """One archive into ``/configs`` of the created container: the template while the volume
        has nothing of its own, config.yaml while it has none, and the token (0600)."""
        own, has_config = scan_configs(api, container)
        files = template_files(launch.template) if not own else {}
        if not (has_config or CONFIG_FILE in files) and launch.config_yaml:
            files[CONFIG_FILE] = launch.config_yaml.encode()
        archive = Archive(uid)
        add_tree(archive, files)
        archive.file(TOKEN_FILE, launch.token.encode(), mode=TOKEN_MODE)
        with archive.finish() as tar:
            api.put_archive(container, CONFIGS, tar)

    @staticmethod
    def _remove_container(api, container: str) -> None:
        try:
            api.remove_container(container, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: already being removed
                raise
        # The name is free only once the removal finished.
        for _ in range(40):
            try:
                api.inspect_container(container)
            except docker.errors.NotFound:
                return
            time.sleep(0.25)

    # --- restarts: the crash-loop back-off ------------------------------------------------------------------

    def _labels(self, workspace_id) -> dict:
        try:
            return self.api().inspect_container(container_name(workspace_id))["Config"].get("Labels") or {}
        except docker.errors.NotFound:
            return {}

    def restart(self, workspace, *, prepare) -> None:
        """Stop, ``prepare()``, start a new container — carrying the back-off forward in its labels.

        Docker's own ``unless-stopped`` policy restarts a runtime that exits; these restarts are
        the platform's (the health sweep, a secret change…), so a runtime that dies at once is
        not recreated every sweep but after 1 s, 2 s, 4 s… up to 5 min."""
        labels = self._labels(workspace.id)
        try:
            backoff = Backoff.after(restarts=int(labels.get(RESTARTS_LABEL) or 0),
                                    started_at=float(labels.get(STARTED_LABEL) or 0), now=time.time())
        except ValueError:
            backoff = Backoff.after(restarts=0, started_at=0.0, now=time.time())
        self.stop(workspace)
        launch = prepare()
        if launch is not None:
            self.start(workspace, launch=launch, backoff=backoff)

    def restart_backoff_seconds(self, workspace_id) -> float:
        try:
            next_restart_at = float(self._labels(workspace_id).get(NEXT_RESTART_LABEL) or 0)
        except (ValueError, EngineUnavailable, *ENGINE_ERRORS):
            return 0.0
        return Backoff(next_restart_at=next_restart_at).wait(time.time())

    # --- stop / remove ------------------------------------------------------------------------------------

    def stop(self, workspace) -> None:
        """Stop the container (kept, with its volumes, for the next start to replace)."""
        name = container_name(workspace.id)
        try:
            self.api().stop(name, timeout=STOP_TIMEOUT_SECONDS)
        except docker.errors.NotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise RuntimeError(f"could not stop container {name}: {_explain(exc)}") from None
        finally:
            self._forget()

    def remove(self, workspace) -> None:
        """Force-remove the container and the workspace's volumes (a bound host directory stays)."""
        where = placement(workspace)
        try:
            api = self.api()
            self._remove_container(api, where.container)
            remove_volumes(api, where.owned_volumes)
        except ENGINE_ERRORS as exc:
            raise RuntimeError(f"could not remove container {where.container}: {_explain(exc)}") from None
        finally:
            self._forget()

    # --- what runs ----------------------------------------------------------------------------------------------

    def _managed(self, *, running_only: bool, api=None) -> list[dict]:
        """This platform's containers (see the module docstring on instances)."""
        filters = {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={settings.MOLECULE_PLATFORM_INSTANCE}"]}
        if running_only:
            filters["status"] = "running"
        return (api or self.api()).containers(all=not running_only, filters=filters)

    def live_workspace_ids(self) -> set[str]:
        return {seen.workspace_id for seen in map(_seen_from, self._managed(running_only=True)) if seen}

    def provisioned_workspace_ids(self) -> set[str]:
        return {seen.workspace_id for seen in map(_seen_from, self._managed(running_only=False)) if seen}

    def _forget(self) -> None:
        self._seen_at = -math.inf

    def seen(self, workspace_id) -> Seen | None:
        """The workspace's container from a listing at most ``SNAPSHOT_SECONDS`` old (re-read
        sooner when it is not in it); raises when the engine cannot be listed."""
        key = str(workspace_id)
        age = time.monotonic() - self._seen_at
        if age < SNAPSHOT_SECONDS and (key in self._seen or age < MISS_REFRESH_SECONDS):
            return self._seen.get(key)
        listed = self._managed(running_only=False, api=self.client("lookup").api)
        listing = {seen.workspace_id: seen for seen in map(_seen_from, listed) if seen}
        self._seen, self._seen_at = listing, time.monotonic()
        return listing.get(key)

    def _seen_quietly(self, workspace_id) -> Seen | None:
        """:meth:`seen`, or None when the engine cannot tell; after a failure the lookups rest
        for a few seconds, so a hung engine does not hold up every request (each waits at most
        ``LOOKUP_TIMEOUT_SECONDS``)."""
        if time.monotonic() < self._lookups_down_until:
            return None
        try:
            return self.seen(workspace_id)
        except (EngineUnavailable, *ENGINE_ERRORS):
            self._lookups_down_until = time.monotonic() + ENGINE_DOWN_SECONDS
            log.warning("Docker engine not reachable for a URL lookup", exc_info=True)
            return None

    def assigned_url(self, workspace_id) -> str | None:
        seen = self._seen_quietly(workspace_id)
        if seen is None or not seen.running or seen.port is None:
            return None
        return f"http://{ADVERTISED_HOST}:{seen.port}"

    def internal_url(self, workspace_id) -> str | None:
        seen = self._seen_quietly(workspace_id)
        if seen is not None and seen.host_network:
            return None  # not on the workspace network: peers use its loopback URL
        return f"http://{container_name(workspace_id)}:{CONTAINER_PORT}"

    def url_seen_from(self, caller_id, url: str) -> str:
        """Our containers reach the host's loopback as ``host.docker.internal`` (host-network ones
        as it is); anyone else gets ``url`` as registered."""
        seen = self._seen_quietly(caller_id)
        if seen is None or seen.host_network:
            return url
        return docker_host_url(url)

    # --- files and terminal ---------------------------------------------------------------------------------

    def file_store(self, workspace) -> DockerFileStore:
        return DockerFileStore(self.api, placement(workspace))

    def exec_terminal(self, workspace) -> TerminalSession:
        name = container_name(workspace.id)
        try:
            api = self.api()
            state = api.inspect_container(name)["State"]
        except docker.errors.NotFound:
            raise TerminalUnavailable(404, "container not running") from None
        except (EngineUnavailable, *ENGINE_ERRORS):
            raise TerminalUnavailable(503, "Docker not available") from None
        if not state.get("Running") or state.get("Restarting"):
            raise TerminalUnavailable(404, "container not running")
        try:
            return DockerExecSession.open(api, name)
        except docker.errors.APIError as exc:
            if exc.status_code in (404, 409):  # gone or stopped meanwhile
                raise TerminalUnavailable(404, "container not running") from None
            raise TerminalUnavailable(503, "Docker not available") from None
        except ENGINE_ERRORS:
            raise TerminalUnavailable(503, "Docker not available") from None

    # --- orphans (spec §7.4) ---------------------------------------------------------------------------------

    def list_managed_containers(self) -> list[ManagedContainer]:
        """The spec's two kinds (``ws-*`` names, the managed label), less the containers another
        platform instance on this engine made: their rows are in that platform's database, and
        to ours they would all look like orphans."""
        found = []
        for entry in self.api().containers(all=True):
            name = (entry.get("Names") or [""])[0].lstrip("/")
            labels = entry.get("Labels") or {}
            if labels.get(INSTANCE_LABEL, settings.MOLECULE_PLATFORM_INSTANCE) != settings.MOLECULE_PLATFORM_INSTANCE:
                continue
            managed = labels.get(MANAGED_LABEL) == "true"
            if name.startswith(CONTAINER_PREFIX) or managed:
                found.append(ManagedContainer(name=name, managed=managed))
        return found

    def remove_orphan_container(self, container: ManagedContainer) -> None:
        """Force-remove the container and the volumes named after it: ``<name>-configs`` and the
        workspace volume of the id on its label (or, without one, every ``<name>…-workspace``)."""
        api = self.api()
        try:
            labels = api.inspect_container(container.name)["Config"].get("Labels") or {}
        except docker.errors.NotFound:
            labels = {}
        self._remove_container(api, container.name)
        volumes = [f"{container.name}-configs"]
        workspace_id = labels.get(WORKSPACE_LABEL)
        if workspace_id and container_name(workspace_id) == container.name:
            volumes.append(workspace_volume_name(workspace_id))
        elif container.name.startswith(CONTAINER_PREFIX):
            listed = api.volumes(filters={"name": container.name}).get("Volumes") or []
            volumes += [v["Name"] for v in listed if v["Name"].startswith(container.name) and v["Name"].endswith("-workspace")]
        remove_volumes(api, volumes)
        self._forget()

    # --- diagnostics ---------------------------------------------------------------------------------------------

    def log_tail(self, workspace_id, max_bytes: int = 8192) -> str:
        """The end of the container's output ('' when there is none or the engine cannot tell)."""
        try:
            data = self.api().logs(container_name(workspace_id), tail=200)
        except (EngineUnavailable, *ENGINE_ERRORS):
            return ""
        return data[-max_bytes:].decode("utf-8", errors="replace")


# --- terminal (spec §18) ----------------------------------------------------------------------------------------

# Ends every process of one terminal session (marked by TERMINAL_ENV): a TTY exec outlives its
# client, and a shell left behind per closed tab would pile up in a long-lived container.
_END_SESSION = (
    "import os, signal, sys\n"
    "mark = ('" + TERMINAL_ENV + "=' + sys.argv[1]).encode()\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    try:\n"
    "        if mark in open('/proc/%s/environ' % pid, 'rb').read().split(b'\\0'):\n"
    "            os.kill(int(pid), signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass\n"
)


class DockerExecSession(TerminalSession):
    """A shell over ``docker exec`` with a TTY: raw bytes both ways on the hijacked socket."""

    def __init__(self, api, container: str, exec_id: str, sock, mark: str):
        self._api, self._container, self._exec_id, self._mark = api, container, exec_id, mark
        self._holder = sock
        self._sock = getattr(sock, "_sock", sock)  # the SDK wraps the socket in a SocketIO
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def open(cls, api, container: str) -> DockerExecSession:
        shell = "/bin/bash" if _can_run(api, container, "/bin/bash") else "/bin/sh"
        mark = secrets.token_hex(8)
        exec_id = api.exec_create(container, [shell], stdin=True, tty=True, workdir=WORKSPACE_ROOT,
                                  environment={"TERM": "xterm-256color", TERMINAL_ENV: mark})["Id"]
        sock = api.exec_start(exec_id, socket=True, tty=True)
        return cls(api, container, exec_id, sock, mark)

    def read(self, max_bytes: int = 65536) -> bytes:
        try:
            return self._sock.recv(max_bytes)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError:
            pass  # the shell is gone: the next read returns b""

    def resize(self, cols: int, rows: int) -> None:
        with contextlib.suppress(*ENGINE_ERRORS):
            self._api.exec_resize(self._exec_id, height=rows, width=cols)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._holder.close()
        try:
            running = self._api.exec_inspect(self._exec_id).get("Running")
            if running:
                # as the session's own user: root without CAP_SYS_PTRACE cannot read another
                # user's /proc/<pid>/environ
                exec_id = self._api.exec_create(self._container, ["python3", "-c", _END_SESSION, self._mark])["Id"]
                self._api.exec_start(exec_id)
        except ENGINE_ERRORS:
            log.debug("could not end terminal session in %s", self._container, exc_info=True)


def _can_run(api, container: str, program: str) -> bool:
    try:
        exec_id = api.exec_create(container, [program, "-c", "exit 0"])["Id"]
        api.exec_start(exec_id)
        return api.exec_inspect(exec_id).get("ExitCode") == 0
    except docker.errors.APIError:
        return False
