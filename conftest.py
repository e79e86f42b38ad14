"""Shared fixtures. Tests run against the real PostgreSQL and Redis the test command provides."""

import functools

import pytest
import redis as redis_lib
from django.conf import settings
from django.db import connections
from django.test.testcases import TransactionTestCase

from molecule_site.tests.api_client import ADMIN_TOKEN, call


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """pytest-playwright's browser tests run last. Its sync API keeps one Playwright for the
    session, whose event loop stays marked as running in the main thread from the first browser
    test on: every later test touching the ORM or ``async_to_sync`` would fail (Django refuses
    sync database calls "from an async context"). pytest groups tests of the session-wide
    ``browser_name`` parameter together, but that group can land mid-run; this keeps it at the end."""
    uses_session_browser = [item for item in items if "browser_name" in getattr(item, "fixturenames", ())]
    if uses_session_browser:
        others = [item for item in items if "browser_name" not in getattr(item, "fixturenames", ())]
        items[:] = others + uses_session_browser


# Tables a transactional test's teardown leaves alone: what migrate wrote and no test changes.
# Django's flush empties them too and then rebuilds them in a post_migrate pass for every app.
FLUSH_KEEPS = frozenset({"django_migrations", "django_content_type", "auth_permission"})


def _truncate_what_the_test_wrote(self):
    """TransactionTestCase's teardown (every ``django_db(transaction=True)`` test), cheaper: one
    probe finds the tables that have rows, and only those are truncated (CASCADE), with no
    post_migrate pass. Django's ``flush`` truncates all ~45 tables and rebuilds the content types
    and permissions after each test: the registry, activity, memory and secrets_app tests (1,375)
    took 180 s with it and take 137 s with this."""
    for db_name in self._databases_names(include_mirrors=False):
        connection = connections[db_name]
        tables = [table for table in connection.introspection.django_table_names(only_existing=True, include_views=False)
                  if table not in FLUSH_KEEPS]
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(f"(SELECT %s FROM {quote(table)} LIMIT 1)" for table in tables), tables)
            written = [row[0] for row in cursor.fetchall()]
            if written:
                cursor.execute(f"TRUNCATE {', '.join(quote(table) for table in written)} CASCADE")


TransactionTestCase._fixture_teardown = _truncate_what_the_test_wrote


@pytest.fixture
def redis_client():
    """The platform's Redis, emptied before and after the test so tests cannot see each other."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def operator(django_user_model):
    """A staff superuser, as created by ``make run`` for the first operator."""
    return django_user_model.objects.create_superuser("operator", "operator@example.com", "correct horse battery")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def secure(settings):
    """The production rules for one test: dev mode off, ``ADMIN_TOKEN`` the admin token (returned)."""
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    return ADMIN_TOKEN


@pytest.fixture
def api(client, secure):
    """``api(method, path, body=None, token=ADMIN_TOKEN, **environ)``: a call as the operator's
    scripts make it (``molecule_site.tests.api_client.call``), under the ``secure`` rules."""
    return functools.partial(call, client)


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    """Keep the suite far below the per-IP rate limit; rate-limit tests set their own."""
    settings.RATE_LIMIT = 1_000_000


@pytest.fixture(autouse=True)
def _no_provisioner(settings):
    """Pin the suite to the ``none`` backend: ``auto`` would pick the local-process backend here
    (the runtime is installed in the venv). Tests that need ``local`` set it and clear the cache."""
    from workspaces.provisioners import get_provisioner

    settings.MOLECULE_PROVISIONER = "none"
    get_provisioner.cache_clear()
    yield
    get_provisioner.cache_clear()
