"""``make run``: the whole platform as one supervised group of processes.

Starts the embedded PostgreSQL/Redis for unset URLs, migrates, makes sure an operator account
exists, then runs ``WEB_CONCURRENCY`` web processes, a Celery worker and Celery beat. The web
processes share one listening socket that the launcher binds and hands down (``--fd``), so the
kernel spreads connections across them and a restarting one never frees the port; events reach
every process's WebSockets through the Redis channel layer. Output is prefixed with the
process name. A child that dies is restarted with backoff; one that keeps dying right after
start stops the group. Ctrl-C (or SIGTERM) stops every child, then the local workspace runtimes
(``manage.py stop_local_runtimes``), then the embedded servers this launcher started, so a second
``make run`` starts from the same data (and restarts the workspaces that should run).

When the Docker backend runs the workspaces (``MOLECULE_PROVISIONER=docker``, or ``auto`` with an
engine answering), the launcher first builds the default runtime's and echo's workspace images
if they are missing (``manage.py build_workspace_images --default``), and the web tier listens on a second socket: the
gateway address of the workspace network, which containers reach as ``host.docker.internal``
(the platform's own HOST, loopback by default, is not reachable from a container).

``python -m molecule_site.launcher web`` runs only the supervised web processes (containers).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import multiprocess

from molecule_site import capacity, docker_engine, embedded, hardening, local_keys, modes, serve
from molecule_site.env import env_choice, env_int, env_str

STOP_GRACE_SECONDS = 15
LISTEN_BACKLOG = 1024
READY_TIMEOUT_SECONDS = 120
WEB_SERVERS = ("uvicorn", "daphne")
DEFAULT_WEB_SERVER = "uvicorn"
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
PROVISIONERS = ("auto", "docker", "none", "local")  # as molecule_site.settings admits them
DEFAULT_WORKSPACE_NETWORK = "molecule-monorepo-net"

FAST_EXIT_SECONDS = 10
FAST_EXITS_BEFORE_GIVING_UP = 3
MAX_BACKOFF_SECONDS = 30


@dataclass
class Child:
    """One supervised process and its restart bookkeeping."""

    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    fast_exits: int = 0
    backoff: float = 1.0
    restart_at: float | None = None
    pumps: list[threading.Thread] = field(default_factory=list)
    pass_fds: tuple[int, ...] = ()
    env: dict[str, str] | None = None


def _pump(name: str, stream, out) -> None:
    width = 7
    for line in iter(stream.readline, b""):
        out.write(f"{name:<{width}}| ".encode() + line)
        out.flush()
    stream.close()


def _start(child: Child) -> None:
    child.process = subprocess.Popen(
        child.command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        pass_fds=child.pass_fds,
        env=child.env,
    )
    child.started_at = time.monotonic()
    child.restart_at = None
    child.pumps = [threading.Thread(target=_pump, args=(child.name, child.process.stdout, sys.stdout.buffer), daemon=True)]
    for pump in child.pumps:
        pump.start()


def _stop_all(children: list[Child]) -> None:
    running = [c for c in children if c.process and c.process.poll() is None]
    for child in running:
        child.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"launcher: {child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it", flush=True)
            child.process.kill()
            child.process.wait()
    for child in children:
        for pump in child.pumps:
            pump.join(timeout=1)


def supervise(children: list[Child]) -> int:
    """Run children until a signal arrives or one keeps failing; returns the exit code."""
    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in children:
        _start(child)
    exit_code = 0
    while not stopping.wait(0.2):
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    print(f"launcher: restarting {child.name}", flush=True)
                    _start(child)
                continue
            code = child.process.poll()
            if code is None:
                if now - child.started_at > FAST_EXIT_SECONDS:
                    child.fast_exits, child.backoff = 0, 1.0
                continue
            _forget_metrics_of(child.process.pid)
            if now - child.started_at < FAST_EXIT_SECONDS:
                child.fast_exits += 1
            if child.fast_exits >= FAST_EXITS_BEFORE_GIVING_UP:
                print(f"launcher: {child.name} keeps exiting right after start (code {code}); stopping", flush=True)
                stopping.set()
                exit_code = 1
                break
            print(f"launcher: {child.name} exited with code {code}; restarting in {child.backoff:.0f}s", flush=True)
            child.restart_at = now + child.backoff
            child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
    print("launcher: stopping", flush=True)
    _stop_all(children)
    return exit_code


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], check=True)


def _announce_ready(base: str, host: str, port: int, web: int) -> None:
    """One line once the web tier answers, so people (and tests) know when to start talking."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as response:
                if response.status == 200:
                    print(f"launcher: ready: {web} web process{'es' if web > 1 else ''} serving {base}", flush=True)
                    return
        except OSError:
            pass
        time.sleep(0.25)
    print(f"launcher: the web tier did not answer within {READY_TIMEOUT_SECONDS}s", flush=True)


def _forget_metrics_of(pid: int) -> None:
    """A dead process's live gauges (open WebSockets) must stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


def _fresh_metrics_dir(home: Path) -> Path:
    """Where every process writes its Prometheus samples, so ``/metrics`` from any web process
    reports the whole platform (prometheus_client's multiprocess mode); emptied at each start."""
    directory = home / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def listen_socket(host: str, port: int) -> socket.socket:
    """The web tier's one listening socket, inherited by every web process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def docker_gateway(host: str) -> str | None:
    """The workspace network's gateway, when the Docker backend is in use and ``host`` does not
    already cover it (a wildcard); None otherwise. Creates the network when it is missing, as
    the backend would."""
    choice = env_choice("MOLECULE_PROVISIONER", "auto", PROVISIONERS)
    if choice not in {"docker", "auto"} or host in WILDCARD_HOSTS:
        return None
    try:
        client = docker_engine.connect(timeout=5)
    except docker_engine.EngineUnavailable as exc:
        if choice == "docker":
            print(f"launcher: MOLECULE_PROVISIONER=docker, but {exc}; workspaces will fail to start", flush=True)
        return None
    try:
        return docker_engine.ensure_network(client, env_str("WORKSPACE_NETWORK", DEFAULT_WORKSPACE_NETWORK))
    except (RuntimeError, *docker_engine.ENGINE_ERRORS) as exc:
        print(f"launcher: no workspace network ({exc}); containers will not reach the platform", flush=True)
        return None
    finally:
        client.close()


def listen_sockets(host: str, port: int, gateway: str | None = None) -> list[socket.socket]:
    """The web tier's sockets: ``host``, and the Docker network's gateway when there is one."""
    sockets = [listen_socket(host, port)]
    if gateway and gateway != host:
        sockets.append(listen_socket(gateway, port))
    return sockets


def web_command(server: str, fds: list[int]) -> list[str]:
    """One web process serving the ASGI app on the inherited sockets ``fds``."""
    python = sys.executable
    if server == "uvicorn":
        return [python, "-m", "molecule_site.serve", *(arg for fd in fds for arg in ("--fd", str(fd)))]
    extra = [arg for fd in fds[1:] for arg in ("-e", f"fd:fileno={fd}")]
    return [
        python, "-m", "daphne", "--fd", str(fds[0]), *extra, "-v", "1", "--access-log", os.devnull,
        "--ping-interval", str(serve.WS_PING_SECONDS), "--ping-timeout", str(serve.WS_PING_SECONDS),
        "molecule_site.asgi:application",
    ]


def web_children(server: str, fds: list[int], count: int) -> list[Child]:
    return [
        Child(f"web-{n}" if count > 1 else "web", web_command(server, fds), pass_fds=tuple(fds),
              env={**os.environ, "MOLECULE_PROCESS_ROLE": "web"})
        for n in range(1, count + 1)
    ]


def _build_workspace_images() -> None:
    """The workspace images that are missing, when the Docker backend runs the workspaces; a
    failed build does not stop the platform (starts then fail naming the command to run)."""
    try:
        _manage("build_workspace_images", "--missing", "--if-docker", "--default")
    except subprocess.CalledProcessError:
        print("launcher: building the workspace images failed (see above); workspaces cannot start until "
              "`python manage.py build_workspace_images` succeeds", flush=True)


def admin_access_lines(home: Path) -> str:
    """How to authenticate as operator, for the banner: the generated ADMIN_TOKEN is shown in
    full only the first time (it stays in ``MOLECULE_HOME/admin_token``, 0600); dev mode gets
    its warning instead."""
    env = modes.molecule_env()
    if modes.is_dev_mode(env, env_str("ADMIN_TOKEN")):
        return modes.DEV_MODE_BANNER.format(env=env)
    if env_str("ADMIN_TOKEN") or modes.is_production(env):
        return "  token:   ADMIN_TOKEN from the environment\n"
    token, created = local_keys.admin_token(home)
    path = home / local_keys.ADMIN_TOKEN_FILE
    if created:
        return (f"  token:   ADMIN_TOKEN={token}\n"
                f"           generated for this install and shown once; it stays in {path}\n")
    return f"  token:   ADMIN_TOKEN is in {path}\n"


def main() -> int:
    hardening.make_undumpable()  # it holds the keys' environment: no same-user process reads it
    home = embedded.molecule_home()
    os.environ["MOLECULE_HOME"] = str(home)
    host = env_str("HOST", "127.0.0.1")
    port = env_int("PORT", 8080, minimum=1, maximum=65535)
    started = embedded.ensure_environment(home)
    try:
        access = admin_access_lines(home)  # before any child process: they read the file it writes
        _manage("migrate", "--noinput", "-v", "0")
        _manage("ensure_operator")
        _manage("restart_local_runtimes")  # rows of runtimes the last stop ended: provisioning, not a stale online
        _build_workspace_images()
        python = sys.executable
        sizes = capacity.budget()
        web, workers = sizes.web_processes, sizes.worker_processes
        server = env_choice("WEB_SERVER", DEFAULT_WEB_SERVER, WEB_SERVERS)
        gateway = docker_gateway(host)
        sockets = listen_sockets(host, port, gateway)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(home))
        shown_host = "localhost" if host in {"0.0.0.0", "127.0.0.1", "::"} else host
        base = f"http://{shown_host}:{port}"
        print(
            f"\nMolecule platform on {base}\n"
            f"  canvas:  {base}/  (log in as the operator)\n"
            f"  admin:   {base}/django-admin/\n"
            f"  API:     {base}/workspaces  (health: {base}/health, metrics: {base}/metrics)\n"
            f"  web:     {web} {server} process{'es' if web > 1 else ''} on one socket; worker: {workers}; "
            f"at most {sizes.connection_bound} database connections\n"
            f"  data:    {home}\n"
            + (f"  docker:  workspaces run as containers; they reach the platform as "
               f"host.docker.internal ({gateway}:{port})\n" if gateway else "")
            + f"{access}"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        children = [
            *web_children(server, [sock.fileno() for sock in sockets], web),
            # -q: no banners (the lines above say what runs); one worker needs no mingle/gossip
            Child("worker", [python, "-m", "celery", "-A", "molecule_site", "-q", "worker", "-l", "info",
                             "--concurrency", str(workers), "--without-mingle", "--without-gossip"]),
            Child(
                "beat",
                [python, "-m", "celery", "-A", "molecule_site", "-q", "beat", "-l", "info",
                 "-s", str(home / "celerybeat-schedule")],
            ),
        ]
        probe_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        threading.Thread(target=_announce_ready, args=(base, probe_host, port, web), daemon=True).start()
        code = supervise(children)
        # Workspace runtimes are detached from the worker that started them: stop them now that
        # nothing can start new ones; the next `make run` restarts those that should run.
        try:
            _manage("stop_local_runtimes")
        except subprocess.CalledProcessError:
            print("launcher: could not stop the local workspace runtimes", flush=True)
        return code
    finally:
        embedded.stop_started(home, started)


def main_web_tier() -> int:
    """``python -m molecule_site.launcher web``: only the web processes, on services given by URL.

    For container deployments (the Dockerfile's command), where migrations, the worker and beat
    run as services of their own.
    """
    hardening.make_undumpable()
    host = env_str("HOST", "127.0.0.1")
    port = env_int("PORT", 8080, minimum=1, maximum=65535)
    web = capacity.budget().web_processes
    server = env_choice("WEB_SERVER", DEFAULT_WEB_SERVER, WEB_SERVERS)
    sock = listen_socket(host, port)
    metrics_home = Path(tempfile.mkdtemp(prefix="molecule-web-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(metrics_home))
    print(f"launcher: {web} {server} web process{'es' if web > 1 else ''} on {host}:{port}", flush=True)
    probe_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    threading.Thread(target=_announce_ready, args=(f"http://{probe_host}:{port}", probe_host, port, web), daemon=True).start()
    try:
        return supervise(web_children(server, [sock.fileno()], web))
    finally:
        shutil.rmtree(metrics_home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main_web_tier() if sys.argv[1:] == ["web"] else main())
