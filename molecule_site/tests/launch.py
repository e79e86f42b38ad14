"""Starts the whole platform (``molecule_site.launcher``, as ``make run`` does) for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from django.conf import settings


def wait_until(check, timeout: float = 10, what: str = "condition", interval: float = 0.1):
    """``check()``'s first truthy result, polled until ``timeout`` seconds (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def run_async(coroutine_function, *args):
    """``coroutine_function(*args)`` run to completion on a loop of its own in another thread.

    Not ``asyncio.run`` or ``async_to_sync`` here: once a browser test ran, Playwright's sync API
    keeps an event loop running in the main thread, and both refuse to start under it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine_function(*args)).result()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Launch:
    """A launcher process whose combined output is collected line by line."""

    def __init__(self, home, port: int, **env_overrides: str):
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("MOLECULE_")}
        env.update(MOLECULE_HOME=str(home), PORT=str(port), **env_overrides)
        self.port = port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "molecule_site.launcher"], cwd=settings.BASE_DIR, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *needles: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.output for n in needles):
            assert self.process.poll() is None, f"launcher exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"timed out waiting for {needles}:\n{self.output}"
            time.sleep(0.2)

    def stop(self, timeout: float = 180) -> int:
        """Ctrl-C, as an operator would; a launcher that does not finish is killed and reported."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"launcher did not stop within {timeout}s:\n{self.output[-5000:]}") from None


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


@contextmanager
def platform_on_fresh_database(home, redis_db: int = 1, **env: str):
    """The whole platform (web + worker + beat) on a new database of the test PostgreSQL and a
    Redis database of its own, both dropped/flushed afterwards. Yields the :class:`Launch`."""
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    redis_url = _with_path(settings.REDIS_URL, f"/{redis_db}")
    redis.Redis.from_url(redis_url).flushdb()
    launch = Launch(
        home, free_port(), DATABASE_URL=_with_path(settings.DATABASE_URL, f"/{database}"), REDIS_URL=redis_url, **env
    )
    launch.database = database
    try:
        launch.wait_for("launcher: ready", "celery@", "beat: Starting")
        yield launch
    finally:
        launch.stop()
        redis.Redis.from_url(redis_url).flushdb()
        with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
