"""Fixtures of the registry tests: a REAL Celery worker for the end-to-end delegation tests.

The worker is ``python -m celery -A molecule_site worker --pool solo`` in a subprocess, pointed
at the TEST database (built from ``connection.settings_dict`` once pytest-django created it) and
the same Redis. It only sees committed rows, so tests using it need
``@pytest.mark.django_db(transaction=True)`` and must poll for the final state.
Started once per session, on first use; stopped before the test database is dropped. It
consumes the task queue only while a test that asked for it runs (``celery_worker``): other
tests publish tasks too (provisioning on commit, queue drains), and a worker quietly running
them against the test database between tests would make those tests flaky.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection

WORKER_READY_TIMEOUT_SECONDS = 60
WORKER_ADMIN_TOKEN = "worker-admin-token-for-tests"
# Modules whose tasks these tests need the worker to know beyond the autodiscovered
# ``<app>.tasks``; settings.CELERY_IMPORTS must list them for production workers.
WORKER_TASK_MODULES = ("registry.delegation",)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "celery_worker: runs a real Celery worker subprocess against the test database (slow-ish)"
    )


def database_url_for(settings_dict: dict) -> str:
    """A ``DATABASE_URL`` for ``settings_dict`` that ``dj_database_url`` parses back to it
    (a Unix-socket host, as the embedded PostgreSQL uses, travels in ``OPTIONS['host']``)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    options = {k: str(v) for k, v in (settings_dict.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
    if host.startswith("/"):
        options.setdefault("host", host)
        host = ""
    netloc = f"{user}:{password}@{host}" + (f":{port}" if host and port else "")
    query = f"?{urlencode(options)}" if options else ""
    return f"postgresql://{netloc}/{quote(settings_dict['NAME'], safe='')}{query}"


@dataclass(frozen=True)
class Worker:
    node: str
    log_path: Path

    def log(self) -> str:
        """What the worker printed so far (warnings and errors): attach it to a failure."""
        return self.log_path.read_text(errors="replace")


def _ping(app, node: str) -> bool:
    try:
        return bool(app.control.ping(destination=[node], timeout=0.5))
    except Exception:  # noqa: BLE001 - broker hiccups while the worker boots: just ask again
        return False


def redeclare_default_queue() -> None:
    """Other tests flush Redis, which drops kombu's queue binding; without it a published
    task is routed nowhere. Declaring the default queue again restores the binding."""
    from molecule_site.celery import app

    with app.connection_for_write() as conn:
        app.amqp.queues[app.conf.task_default_queue](conn.default_channel).declare()


def _control(app, command: str, node: str) -> None:
    replies = getattr(app.control, command)(app.conf.task_default_queue, destination=[node], reply=True, timeout=5)
    if not any("ok" in answer for reply in replies or [] for answer in reply.values()):
        pytest.fail(f"the test Celery worker did not confirm {command}: {replies!r}")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """The running worker subprocess (session-scoped)."""
    from molecule_site.celery import app

    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    suffix = uuid.uuid4().hex[:8]
    node = f"delegation-tests-{suffix}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        # Dev MOLECULE_ENV lets the A2A proxy reach loopback; an admin token keeps dev-mode auth off.
        "MOLECULE_ENV": "development",
        "ADMIN_TOKEN": WORKER_ADMIN_TOKEN,
        "DELEGATION_RETRY_DELAY_SECONDS": "1",
        # Like the rest of the suite (root conftest): no local runtimes, whose absence would make
        # the proxy treat an unreachable test agent as a crashed runtime to restart.
        "MOLECULE_PROVISIONER": "none",
        "PYTHONUNBUFFERED": "1",
    }
    missing = [m for m in WORKER_TASK_MODULES if m not in (getattr(settings, "CELERY_IMPORTS", None) or ())]
    if missing:
        # Workers currently learn these tasks only by accident (Celery's Django fixup runs the
        # URL system checks, which import the URLconf and the views). Make the gap visible.
        warnings.warn(f"settings.CELERY_IMPORTS lacks {missing}; the test worker imports them with --include",
                      stacklevel=1)
    log_file = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    command = [
        sys.executable, "-m", "celery", "-A", "molecule_site", "worker",
        "--pool", "solo", "--concurrency", "1", "-l", "warning", "-n", node,
        # Idle until a test adds the real queue (see the module docstring).
        "--queues", f"delegation-tests-idle-{suffix}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    if missing:
        command += ["--include", ",".join(missing)]
    process = subprocess.Popen(
        command, env=env, cwd=Path(settings.BASE_DIR), stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        while not _ping(app, node):
            if process.poll() is not None or time.monotonic() > deadline:
                output = Path(log_file.name).read_text(errors="replace")
                pytest.fail(f"the Celery worker did not become ready (exit {process.poll()}):\n{output}")
            time.sleep(0.2)
        yield Worker(node=node, log_path=Path(log_file.name))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log_file.close()
        os.unlink(log_file.name)


@pytest.fixture
def celery_worker(celery_worker_process):
    """The real worker consumes the task queue for the duration of this test.

    Messages other tests left in the queue are purged first: they belong to rows that no
    longer exist, and only this test's tasks should run now.
    """
    from molecule_site.celery import app

    redeclare_default_queue()
    app.control.purge()
    _control(app, "add_consumer", celery_worker_process.node)
    try:
        yield celery_worker_process
    finally:
        _control(app, "cancel_consumer", celery_worker_process.node)
