"""Async PostgreSQL for the hot paths: a bounded psycopg ``AsyncConnectionPool`` per event loop.

Django's async ORM still runs every query in a worker thread; heartbeat, register, update-card
and the A2A proxy instead run their (already raw) SQL on psycopg's async driver, so a request
never leaves the event loop. The pool is the second of the two per process (the ORM's sync pool
is the other, ``DATABASES["default"]["OPTIONS"]["pool"]``); together they make the bound that
``docs/performance.md`` documents.

Only web processes (``MOLECULE_PROCESS_ROLE=web``, set by the launcher) keep a pool, one per
event loop; their loop lives as long as the process. Elsewhere loops are short (``async_to_sync``
in a Celery task, a test), so a statement gets a connection of its own, closed afterwards, unless
the caller opened a small pool for the loop's lifetime with :func:`dedicated_pool`.

Waiting for a connection is bounded by ``DB_POOL_TIMEOUT_SECONDS``: past it :class:`DatabaseBusy`
is raised, which the API answers with 503 instead of hanging (``molecule_site.wire``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

import psycopg
from django.conf import settings
from django.db import connections
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from molecule_site.capacity import DEDICATED_ASYNC_POOL

__all__ = [
    "DatabaseBusy", "connection", "dedicated_pool", "execute", "fetchall", "fetchone", "transaction",
    "capture_statements",
]

WEB_ROLE = "web"


class DatabaseBusy(Exception):
    """No database connection became free within ``DB_POOL_TIMEOUT_SECONDS``."""


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = weakref.WeakKeyDictionary()
_pool_override: ContextVar[AsyncConnectionPool | None] = ContextVar("adb_pool", default=None)
# Tests count statements like django_assert_num_queries does for the ORM.
_statement_hook: ContextVar[Callable[[str], None] | None] = ContextVar("adb_statement_hook", default=None)


def _connect_kwargs() -> dict:
    """Connection parameters of Django's ``default`` database (the test database under pytest)."""
    conn = settings.DATABASES["default"]
    live = connections["default"].settings_dict  # NAME is rewritten to test_<name> by the test runner
    options = {k: v for k, v in live.get("OPTIONS", {}).items() if k not in {"pool", "server_side_binding"}}
    kwargs = {
        "dbname": live.get("NAME") or conn.get("NAME"),
        "user": live.get("USER") or None,
        "password": live.get("PASSWORD") or None,
        "host": live.get("HOST") or None,
        "port": live.get("PORT") or None,
        "autocommit": True,
        "application_name": "molecule-async",
        **options,
    }
    return {k: v for k, v in kwargs.items() if v not in (None, "")}


def _new_pool(max_size: int, min_size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        kwargs=_connect_kwargs(),
        min_size=min_size,
        max_size=max_size,
        timeout=settings.DB_POOL_TIMEOUT_SECONDS,
        max_idle=settings.DB_POOL_MAX_IDLE_SECONDS,
        open=False,
        # No check on every checkout: it costs a round trip per statement on the hot paths. A
        # connection that broke fails its statement once and the pool replaces it.
        name="molecule-async",
    )


async def _pool() -> AsyncConnectionPool:
    override = _pool_override.get()
    if override is not None:
        return override
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _new_pool(settings.DB_ASYNC_POOL_MAX, min(settings.DB_POOL_MIN, settings.DB_ASYNC_POOL_MAX))
        await pool.open()
    return pool


@asynccontextmanager
async def dedicated_pool(max_size: int = DEDICATED_ASYNC_POOL) -> AsyncIterator[None]:
    """A small pool for the duration of a short-lived event loop (Celery's ``async_to_sync``)."""
    pool = _new_pool(max_size, 0)
    await pool.open()
    token = _pool_override.set(pool)
    try:
        yield
    finally:
        _pool_override.reset(token)
        await pool.close()


@asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection in autocommit mode; :class:`DatabaseBusy` when no pooled one frees up in time."""
    if _pool_override.get() is None and settings.PROCESS_ROLE != WEB_ROLE:
        async with await psycopg.AsyncConnection.connect(
            **_connect_kwargs(), connect_timeout=settings.DB_POOL_TIMEOUT_SECONDS
        ) as conn:
            yield conn
        return
    pool = await _pool()
    try:
        async with pool.connection() as conn:
            yield conn
    except PoolTimeout:
        raise DatabaseBusy from None


@asynccontextmanager
async def transaction() -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection inside one transaction, committed when the block exits cleanly."""
    async with connection() as conn:
        async with conn.transaction():
            yield conn


def _note(sql: str) -> None:
    hook = _statement_hook.get()
    if hook is not None:
        hook(sql)


@asynccontextmanager
async def _using(conn: psycopg.AsyncConnection | None) -> AsyncIterator[psycopg.AsyncConnection]:
    if conn is not None:
        yield conn
    else:
        async with connection() as own:
            yield own


async def execute(sql: str, params=(), *, conn: psycopg.AsyncConnection | None = None) -> int:
    """Run one statement (on ``conn``, else a connection of its own); returns its row count."""
    _note(sql)
    async with _using(conn) as c:
        return (await c.execute(sql, params)).rowcount


async def fetchone(sql: str, params=(), *, conn: psycopg.AsyncConnection | None = None):
    _note(sql)
    async with _using(conn) as c:
        return await (await c.execute(sql, params)).fetchone()


async def fetchall(sql: str, params=(), *, conn: psycopg.AsyncConnection | None = None) -> list:
    _note(sql)
    async with _using(conn) as c:
        return await (await c.execute(sql, params)).fetchall()


class capture_statements:
    """``with capture_statements() as statements:`` records the SQL this module runs (tests)."""

    def __enter__(self) -> list[str]:
        self.statements: list[str] = []
        self._token = _statement_hook.set(self.statements.append)
        return self.statements

    def __exit__(self, *exc) -> None:
        _statement_hook.reset(self._token)
