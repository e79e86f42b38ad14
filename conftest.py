"""Shared fixtures. Tests run against the real PostgreSQL and Redis the test command provides."""

import pytest
import redis as redis_lib
from django.conf import settings


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
