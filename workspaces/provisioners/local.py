"""The local-process backend: each workspace runs ``molecule-runtime`` as a process on this machine.

The embedded default (``make run`` with ``MOLECULE_PROVISIONER=auto`` and the runtime package
installed). Per workspace, under ``MOLECULE_HOME/workspaces/<id>/``::

    configs/          WORKSPACE_CONFIG_PATH: the template copied in, config.yaml generated when
                      missing, .auth_token with the token minted at each start
    private/          the runtime's working directory and delegation-results file (and, when the
                      platform runs as root, its HOME and TMPDIR)
    runtime.log       the runtime's stdout and stderr, appended (rotated once past 5 MB)
    runtime.json      {pid, port, url, started_at, restarts, next_restart_at} while it should run
    provisioned.json  {uid, provisioned_at}: this backend started the workspace (kept across
                      stops, gone with a purge); only such workspaces are ever restarted
    .lock             serialises start/stop/restart of this workspace across worker processes

**Who runs it** (:mod:`workspaces.provisioners.runtime_users`): the platform's own user, unless
the platform runs as root — then every workspace has a uid and group of its own, its directory
is readable by that runtime alone, and the runtime writes nothing but ``private/``.

**Start** (a :class:`~workspaces.provisioners.base.Launch` prepared by
:mod:`workspaces.provisioning`, in a Celery task, never in a request): write ``provisioned.json``
(choosing the runtime's uid the first time), seed ``configs`` from the launch's template and
config.yaml, set the directory's modes (checking that the runtime's user can run
``molecule-runtime`` and read its configs), write the launch's token to ``.auth_token``, pick a
free loopback port, and spawn the runtime DETACHED: an intermediate Python process starts it in
a new session and exits at once, and we reap that intermediate, so the runtime is re-parented
and the Celery worker never holds a child that could linger as a zombie. The runtime listens on
``127.0.0.1:<port>`` and registers as ``http://localhost:<port>`` (registration accepts
``localhost`` by name); that URL is :meth:`assigned_url`, which the proxy's and discovery's SSRF
filters trust.

The runtime's environment is built from scratch (spec §16): a short allow-list of the host's
variables (PATH, HOME, locale, proxies, CA bundles — never the platform's own DATABASE_URL,
keys or tokens), the launch's env (merged secrets, then WORKSPACE_ID, PLATFORM_URL, PARENT_ID,
MOLECULE_INBOUND_SECRET…), then where this backend put the runtime (WORKSPACE_CONFIG_PATH,
WORKSPACE_DIR, PORT, HOST, AGENT_URL…), which nothing overrides.

**Stop**: SIGTERM to the runtime's process group, up to 10 s, then SIGKILL (and, with a uid of
its own, every process left running as that uid); ``runtime.json`` goes.
**Crashes**: a dead runtime drops out of :meth:`live_workspace_ids`; the container-health sweep
(and, failing that, the liveness sweep) takes it offline and asks for a restart
(``workspaces.provisioning.request_restarts``), which only goes to the workspaces this backend
provisioned (``provisioned.json``, written by the platform where runtimes cannot write) — never
to one that merely registered. Restarts back off per workspace: 1 s doubling to 300 s, reset once a runtime
stayed up 60 s (the state lives in ``runtime.json``, which survives a crash).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.utils import timezone

import workspaces.provisioners.runtime_users as runtime_users
from molecule_site.hardening import BASE_HOST_ENV, NETWORK_HOST_ENV, host_environment
from workspaces.filestores import CONFIGS, TOKEN_FILE, HostDirectoryStore, host_root_dir
from workspaces.provisioners.base import Backoff, Launch, Provisioner, TerminalSession, TerminalUnavailable
from workspaces.provisioners.pty import PtySession

log = logging.getLogger(__name__)

RUNTIME_COMMAND = "molecule-runtime"
RECORD_FILE = "runtime.json"
PROVISIONED_FILE = "provisioned.json"
LOG_FILE = "runtime.log"
LOCK_FILE = ".lock"
UID_LOCK_FILE = ".uids.lock"
DELEGATION_RESULTS_FILE = "delegation_results.jsonl"
CONFIG_FILE = "config.yaml"
LOG_ROTATE_BYTES = 5 * 1024 * 1024
STOP_GRACE_SECONDS = 10.0
LOOPBACK = "127.0.0.1"
SPAWN_TIMEOUT_SECONDS = 30

# Host variables a runtime may inherit; everything else of the platform's environment (database
# and Redis URLs, encryption keys, ADMIN_TOKEN…) stays out of agent processes.
HOST_ENV_ALLOWED = BASE_HOST_ENV + NETWORK_HOST_ENV

# The intermediate process: start the runtime in its own session with the log as stdout/stderr
# (as the user given in argv[3]: {} or Popen's user/group/extra_groups/umask), print its pid, exit
# without waiting (the runtime is re-parented, so no zombie stays with us).
_SPAWNER = """
import json, subprocess, sys
log = open(sys.argv[1], "ab", buffering=0)
child = subprocess.Popen(sys.argv[4:], cwd=sys.argv[2], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                         **json.loads(sys.argv[3]))
print(child.pid, flush=True)
"""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def runtime_executable(runtime: str = "") -> str | None:
    """``LOCAL_RUNTIME_EXECUTABLE`` when set; else the runtime's own environment under
    ``LOCAL_RUNTIME_ENVS_DIR`` when it has one; else ``molecule-runtime`` next to this interpreter
    (the project venv), else on PATH; None when there is none."""
    if settings.LOCAL_RUNTIME_EXECUTABLE:
        configured = Path(settings.LOCAL_RUNTIME_EXECUTABLE)
        return str(configured) if _executable(configured) else None
    if runtime and "/" not in runtime and not runtime.startswith("."):
        own = Path(settings.LOCAL_RUNTIME_ENVS_DIR) / runtime / "bin" / RUNTIME_COMMAND
        if _executable(own):
            return str(own)
    beside = Path(sys.executable).parent / RUNTIME_COMMAND
    if _executable(beside):
        return str(beside)
    return shutil.which(RUNTIME_COMMAND)


def workspaces_root() -> Path:
    return Path(settings.MOLECULE_HOME) / "workspaces"


def workspace_home(workspace_id) -> Path:
    return workspaces_root() / str(workspace_id)


def log_path(workspace_id) -> Path:
    return workspace_home(workspace_id) / LOG_FILE


def read_log_tail(workspace_id, max_bytes: int = 20 * 1024) -> str:
    """The last ``max_bytes`` of the workspace's runtime log ('' when there is none)."""
    try:
        with open(log_path(workspace_id), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]  # start at a line boundary
    return text


def _read_json(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)


def read_record(workspace_id) -> dict | None:
    """``runtime.json`` of the workspace, or None when missing or unreadable."""
    return _read_json(workspace_home(workspace_id) / RECORD_FILE)


def _write_record(workspace_id, record: dict) -> None:
    _write_json(workspace_home(workspace_id) / RECORD_FILE, record)


def read_provisioned(workspace_id) -> dict | None:
    """``provisioned.json``: this backend started the workspace; None when it never did."""
    return _read_json(workspace_home(workspace_id) / PROVISIONED_FILE)


def _runtime_uid(workspace_id) -> int | None:
    """The uid the workspace's runtime runs as when runtimes have uids of their own, else None."""
    uid = (read_provisioned(workspace_id) or {}).get("uid")
    return uid if runtime_users.isolated() and runtime_users.in_range(uid) else None


def _record_provisioning(workspace_id) -> int | None:
    """Write ``provisioned.json`` at the first start; returns the runtime's uid (None: ours).

    When runtimes get uids of their own, one is chosen here (under a lock over every workspace
    of this home, so two starts never pick the same) and kept for the workspace's next starts.
    """
    path = workspace_home(workspace_id) / PROVISIONED_FILE
    record = read_provisioned(workspace_id)
    if not runtime_users.isolated():
        if record is None:
            _write_json(path, {"uid": None, "provisioned_at": time.time()})
        return None
    uid = _runtime_uid(workspace_id)
    if uid is not None:
        return uid
    provisioned_at = (record or {}).get("provisioned_at") or time.time()
    with open(workspaces_root() / UID_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        taken = {
            (_read_json(other) or {}).get("uid")
            for other in workspaces_root().glob(f"*/{PROVISIONED_FILE}")
            if other != path
        }
        uid = runtime_users.pick_uid(taken)
        _write_json(path, {"uid": uid, "provisioned_at": provisioned_at})
    return uid


def _remove_record(workspace_id) -> None:
    with contextlib.suppress(FileNotFoundError):
        (workspace_home(workspace_id) / RECORD_FILE).unlink()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _runtime_process(workspace_id, record: dict | None) -> psutil.Process | None:
    """The live process recorded for the workspace, if it is still OUR runtime (pids get reused)."""
    pid = record.get("pid") if record else None
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if not _alive(process):
            return None
        if not any(RUNTIME_COMMAND in part for part in process.cmdline()):
            return None
        with contextlib.suppress(psutil.AccessDenied):
            if process.environ().get("WORKSPACE_ID") != str(workspace_id):
                return None
        return process
    except psutil.Error:
        return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _workspace_lock(workspace_id):
    """An exclusive lock on the workspace's process operations (all worker processes of this host)."""
    home = workspace_home(workspace_id)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_configs(workspace, launch: Launch) -> Path:
    """``configs/``: the launch's template copied in when the workspace has no files of its own,
    and its generated ``config.yaml`` when there is still none."""
    configs = host_root_dir(workspace.id, CONFIGS)
    if configs.is_dir() and not any(p.name != TOKEN_FILE for p in configs.iterdir()):
        shutil.rmtree(configs)  # nothing of its own yet (at most a token): seed it like a new one
    if not configs.is_dir():
        HostDirectoryStore(workspace.id).seed(launch.template)
    config_file = configs / CONFIG_FILE
    if not config_file.is_file() and launch.config_yaml:
        config_file.write_text(launch.config_yaml)
    return configs


def _prepare_home(workspace_id, uid: int | None) -> Path:
    """The modes of the workspace's directory when its runtime has a uid of its own (see
    ``runtime_users``); returns ``private/``, the one directory the runtime writes."""
    home = workspace_home(workspace_id)
    if uid is not None:
        return runtime_users.lock_down(home, uid)
    private = home / runtime_users.PRIVATE_DIR
    private.mkdir(exist_ok=True)
    return private


def _write_token(token: str, configs: Path, uid: int | None) -> None:
    """Spec §16 "inject": ``.auth_token`` (0600, or root's 0640 in the runtime's group when it has
    a uid of its own), replaced atomically."""
    tmp = configs / f".{TOKEN_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        if uid is None:
            os.fchmod(fd, 0o600)
        else:
            runtime_users.share_file(fd, uid)
        handle.write(token)
    os.replace(tmp, configs / TOKEN_FILE)


def _runtime_env(launch: Launch, *, configs: Path, private: Path, uid: int | None, port: int,
                 url: str) -> dict[str, str]:
    result = host_environment(HOST_ENV_ALLOWED)
    tools = settings.LOCAL_RUNTIME_TOOLS_DIR
    if tools and Path(tools).is_dir():
        result["PATH"] = os.pathsep.join(filter(None, (tools, result.get("PATH", os.defpath))))
    result.update(launch.env)
    result.update({
        "WORKSPACE_CONFIG_PATH": str(configs),
        "CONFIGS_DIR": str(configs),
        # The runtime's /workspace (chat attachments arrive as workspace:/workspace/… URIs).
        "WORKSPACE_DIR": str(configs.parent / "workspace"),
        "PORT": str(port),
        "HOST": LOOPBACK,
        "AGENT_URL": url,
        # The runtime's default, /tmp/delegation_results.jsonl, would be shared by every workspace.
        "DELEGATION_RESULTS_FILE": str(private / DELEGATION_RESULTS_FILE),
        # What the runtime keeps across restarts (the initial-prompt marker, the pre-stop
        # snapshot) when it may not write its configs: a runtime with a uid of its own writes only
        # private/, which survives restarts (runtime.md §2.6, §3.6).
        "MOLECULE_STATE_DIR": str(private),
        "PYTHONUNBUFFERED": "1",
    })
    if uid is not None:
        # The platform's HOME (root's) is not the runtime's, and no passwd entry names its user.
        result.update(HOME=str(private), TMPDIR=str(private), USER=f"molecule-{uid}", LOGNAME=f"molecule-{uid}")
    return result


def _spawn_identity(uid: int | None) -> dict:
    """Popen's arguments for running as ``uid``: its own group and nothing of root's groups; files
    it creates outside ``private/`` (``/tmp``…) readable by nobody else."""
    if uid is None:
        return {}
    return {"user": uid, "group": uid, "extra_groups": [], "umask": 0o077}


def _open_log(workspace_id) -> Path:
    path = log_path(workspace_id)
    with contextlib.suppress(OSError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(LOG_FILE + ".1"))
    return path


class LocalProcessProvisioner(Provisioner):
    """Runs each workspace's ``molecule-runtime`` as a detached process on this machine."""

    name = "local"
    available = True
    runs_local_runtimes = True
    health_sweep = True

    # --- the interface ------------------------------------------------------------------------------

    def start(self, workspace, *, launch):
        with _workspace_lock(workspace.id):
            self._stop_locked(workspace.id)
            self._start_locked(workspace, launch=launch, restarts=0, next_restart_at=0.0)

    def stop(self, workspace):
        if not workspace_home(workspace.id).is_dir():
            return  # never started on this machine
        with _workspace_lock(workspace.id):
            self._stop_locked(workspace.id)

    def restart(self, workspace, *, prepare):
        """Stop, ``prepare()``, start — carrying the crash-loop back-off forward."""
        with _workspace_lock(workspace.id):
            previous = read_record(workspace.id) or {}
            backoff = Backoff.after(restarts=int(previous.get("restarts") or 0),
                                    started_at=float(previous.get("started_at") or 0), now=time.time())
            self._stop_locked(workspace.id)
            launch = prepare()
            if launch is None:
                return  # the row changed under us (paused, removed…): leave it stopped
            self._start_locked(workspace, launch=launch, restarts=backoff.restarts,
                               next_restart_at=backoff.next_restart_at)

    def restart_backoff_seconds(self, workspace_id):
        record = read_record(workspace_id) or {}
        try:
            return Backoff(next_restart_at=float(record.get("next_restart_at") or 0)).wait(time.time())
        except (TypeError, ValueError):
            return 0.0

    def assigned_url(self, workspace_id):
        url = (read_record(workspace_id) or {}).get("url")
        return url if isinstance(url, str) and url else None

    def live_workspace_ids(self):
        live = set()
        for record_file in workspaces_root().glob(f"*/{RECORD_FILE}"):
            workspace_id = record_file.parent.name
            if _runtime_process(workspace_id, read_record(workspace_id)) is not None:
                live.add(workspace_id)
        return live

    def provisioned_workspace_ids(self):
        return {record_file.parent.name for record_file in workspaces_root().glob(f"*/{PROVISIONED_FILE}")}

    def exec_terminal(self, workspace) -> TerminalSession:
        """A shell on a PTY in the runtime's working directory (``private/``), as the runtime's
        own user when it has one: what the runtime itself could do, nothing of the platform's.
        Its environment is the host allow-list and where the workspace lives — no secrets."""
        if _runtime_process(workspace.id, read_record(workspace.id)) is None:
            raise TerminalUnavailable(404, "container not running")
        uid = _runtime_uid(workspace.id)
        private = workspace_home(workspace.id) / runtime_users.PRIVATE_DIR
        env = host_environment(BASE_HOST_ENV)
        env.update(TERM="xterm-256color", WORKSPACE_ID=str(workspace.id),
                   WORKSPACE_CONFIG_PATH=str(host_root_dir(workspace.id, CONFIGS)))
        if uid is not None:
            # no passwd entry names the uid: bash's default prompt would say "I have no name!"
            env.update(HOME=str(private), USER=f"molecule-{uid}", LOGNAME=f"molecule-{uid}",
                       PS1=f"molecule-{uid}:\\w\\$ ")
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        return PtySession.spawn([shell, "-i"], cwd=private, env=env, uid=uid)

    def stop_all(self) -> int:
        """Stop every runtime recorded under ``MOLECULE_HOME`` at once (``make run`` stopping);
        returns how many were running. Their rows stay as they are: on the next start the
        health and liveness sweeps take them offline and restart the ones that should run."""
        found = []
        for record_file in workspaces_root().glob(f"*/{RECORD_FILE}"):
            workspace_id = record_file.parent.name
            process = _runtime_process(workspace_id, read_record(workspace_id))
            if process is not None:
                found.append(process)
            _remove_record(workspace_id)
        _terminate_groups(found)
        return len(found)

    # --- the work, under the workspace lock ---------------------------------------------------------------

    def _start_locked(self, workspace, *, launch: Launch, restarts: int, next_restart_at: float) -> None:
        executable = runtime_executable(workspace.runtime or "")
        if executable is None:
            raise RuntimeError("molecule-runtime is not installed (pip install -e ./runtime)")
        uid = _record_provisioning(workspace.id)
        configs = _prepare_configs(workspace, launch)
        private = _prepare_home(workspace.id, uid)
        if uid is not None:
            if not settings.LOCAL_RUNTIME_EXECUTABLE:  # one the operator named is run as given
                executable = str(runtime_users.runnable_runtime(Path(executable), uid))
            runtime_users.check_runnable(Path(executable), configs, uid)
        _write_token(launch.token, configs, uid)
        port = _free_loopback_port()
        url = f"http://localhost:{port}"
        runtime_env = _runtime_env(launch, configs=configs, private=private, uid=uid, port=port, url=url)
        log_file = _open_log(workspace.id)
        with open(log_file, "ab") as handle:
            runs_as = f" as uid {uid}" if uid is not None else ""
            handle.write(f"--- {timezone.now().isoformat()} starting molecule-runtime on {url}{runs_as}\n".encode())
        spawned = subprocess.run(
            [sys.executable, "-I", "-c", _SPAWNER, str(log_file), str(private), json.dumps(_spawn_identity(uid)),
             executable],
            env=runtime_env, stdin=subprocess.DEVNULL, capture_output=True, timeout=SPAWN_TIMEOUT_SECONDS,
            check=False,
        )
        try:
            pid = int(spawned.stdout.decode().strip())
        except ValueError:
            detail = spawned.stderr.decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"could not start molecule-runtime: {detail or 'no pid'}") from None
        _write_record(workspace.id, {
            "pid": pid,
            "port": port,
            "url": url,
            "started_at": time.time(),
            "restarts": restarts,
            "next_restart_at": next_restart_at,
        })
        log.info("workspace %s: molecule-runtime pid %d on %s", workspace.id, pid, url)

    def _stop_locked(self, workspace_id) -> None:
        process = _runtime_process(workspace_id, read_record(workspace_id))
        if process is not None:
            _terminate_group(process)
        uid = _runtime_uid(workspace_id)
        if uid is not None:
            # The uid is this workspace's alone: whatever still runs as it (a helper that left
            # the process group) goes too, so nothing of an old runtime meets the next one.
            for leftover in runtime_users.processes_of(uid):
                with contextlib.suppress(psutil.Error):
                    leftover.kill()
        _remove_record(workspace_id)


def _terminate_group(process: psutil.Process) -> None:
    _terminate_groups([process])


def _terminate_groups(leaders: list[psutil.Process]) -> None:
    """SIGTERM each runtime's process group (it leads its own session), ≤ 10 s, then SIGKILL."""
    members = []
    for leader in leaders:
        try:
            members += [leader, *leader.children(recursive=True)]
        except psutil.Error:
            members.append(leader)
        _signal_group(leader.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and any(_alive(p) for p in members):
        time.sleep(0.05)
    for leader in leaders:
        if any(_alive(p) for p in members):
            log.warning("molecule-runtime pid %d ignored SIGTERM for %.0f s; killing it", leader.pid,
                        STOP_GRACE_SECONDS)
            _signal_group(leader.pid, signal.SIGKILL)
    for member in members:
        if _alive(member):
            with contextlib.suppress(psutil.Error):
                member.kill()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(OSError):
            os.kill(pgid, sig)
