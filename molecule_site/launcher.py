"""``make run``: the whole platform as one supervised group of processes.

Starts the embedded PostgreSQL/Redis for unset URLs, migrates, makes sure an operator account
exists, then runs web (daphne), a Celery worker and Celery beat. Output is prefixed with the
process name. A child that dies is restarted with backoff; one that keeps dying right after
start stops the group. Ctrl-C (or SIGTERM) stops every child, then the local workspace runtimes
(``manage.py stop_local_runtimes``), then the embedded servers this launcher started, so a second
``make run`` starts from the same data (and restarts the workspaces that should run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from molecule_site import embedded
from molecule_site.env import env_int, env_str

STOP_GRACE_SECONDS = 15
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


def _pump(name: str, stream, out) -> None:
    width = 6
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


def main() -> int:
    home = embedded.molecule_home()
    os.environ["MOLECULE_HOME"] = str(home)
    host = env_str("HOST", "127.0.0.1")
    port = env_int("PORT", 8080, minimum=1, maximum=65535)
    started = embedded.ensure_environment(home)
    try:
        _manage("migrate", "--noinput", "-v", "0")
        _manage("ensure_operator")
        shown_host = "localhost" if host in {"0.0.0.0", "127.0.0.1", "::"} else host
        base = f"http://{shown_host}:{port}"
        print(
            f"\nMolecule platform on {base}\n"
            f"  admin:   {base}/django-admin/\n"
            f"  API:     {base}/workspaces  (health: {base}/health, metrics: {base}/metrics)\n"
            f"  data:    {home}\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        python = sys.executable
        children = [
            Child("web", [python, "-m", "daphne", "-b", host, "-p", str(port), "molecule_site.asgi:application"]),
            Child("worker", [python, "-m", "celery", "-A", "molecule_site", "worker", "-l", "info", "--concurrency", "2"]),
            Child(
                "beat",
                [python, "-m", "celery", "-A", "molecule_site", "beat", "-l", "info",
                 "-s", str(home / "celerybeat-schedule")],
            ),
        ]
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


if __name__ == "__main__":
    sys.exit(main())
