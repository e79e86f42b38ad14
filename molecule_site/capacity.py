"""The platform's process and connection budget, read from the environment.

Every process that may use the ORM holds at most ``DB_POOL_MAX`` PostgreSQL connections (Django's
psycopg pool); web processes hold up to ``DB_ASYNC_POOL_MAX`` more for the async hot paths, and a
Celery task that proxies an A2A call opens a small async pool of ``DEDICATED_ASYNC_POOL`` for its
duration. So the platform never opens more than :func:`connection_bound` connections, which the
embedded PostgreSQL is sized for (``molecule_site.embedded``) and docs/performance.md documents.
Settings and the launcher read the same values through :func:`budget`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from molecule_site.env import EnvError, env_int

DEDICATED_ASYNC_POOL = 2
# Processes besides web and the worker's children that may use the ORM: the worker's parent,
# beat, and one management command (migrate, an operator's shell).
OTHER_ORM_PROCESSES = 3
# Connections kept free for operators (psql) and PostgreSQL's own superuser slots.
HEADROOM = 20


@dataclass(frozen=True)
class Budget:
    web_processes: int
    worker_processes: int
    pool_min: int
    pool_max: int
    async_pool_max: int
    pool_timeout_seconds: int
    pool_max_idle_seconds: int

    @property
    def connection_bound(self) -> int:
        web = self.web_processes * (self.pool_max + self.async_pool_max)
        worker = self.worker_processes * (self.pool_max + DEDICATED_ASYNC_POOL)
        return web + worker + OTHER_ORM_PROCESSES * self.pool_max


def usable_cores() -> int:
    """The cores this process may run on (a container's cpuset, not the host's count)."""
    return len(os.sched_getaffinity(0)) or 1


def budget() -> Budget:
    result = Budget(
        web_processes=env_int("WEB_CONCURRENCY", usable_cores(), minimum=1, maximum=64),
        worker_processes=env_int("WORKER_CONCURRENCY", 2, minimum=1, maximum=64),
        pool_min=env_int("DB_POOL_MIN", 1, minimum=0, maximum=100),
        pool_max=env_int("DB_POOL_MAX", 4, minimum=1, maximum=100),
        async_pool_max=env_int("DB_ASYNC_POOL_MAX", 4, minimum=1, maximum=100),
        pool_timeout_seconds=env_int("DB_POOL_TIMEOUT_SECONDS", 5, minimum=1, maximum=300),
        # Connections above DB_POOL_MIN are closed after this long unused: a burst leaves nothing behind.
        pool_max_idle_seconds=env_int("DB_POOL_MAX_IDLE_SECONDS", 30, minimum=1),
    )
    if result.pool_min > result.pool_max:
        raise EnvError(f"DB_POOL_MIN ({result.pool_min}) must not exceed DB_POOL_MAX ({result.pool_max})")
    return result
