"""The embedded servers are real, keep their data across restarts and are reused when running."""

import os
import stat

import psutil
import psycopg
import redis

from molecule_site import embedded


def test_embedded_redis_has_keyspace_events_and_keeps_data_across_restarts(tmp_path):
    first = embedded.ensure_redis(tmp_path)
    try:
        assert first.started
        client = redis.Redis.from_url(first.url)
        # Redis normalises "KEA" to "AKE": keyspace + keyevent notifications for all classes.
        assert set(client.config_get("notify-keyspace-events")["notify-keyspace-events"]) == {"A", "K", "E"}
        client.set("survives", "restart")
        client.close()

        again = embedded.ensure_redis(tmp_path)
        assert not again.started and again.url == first.url

        embedded.stop_redis(tmp_path)
        restarted = embedded.ensure_redis(tmp_path)
        assert restarted.started
        assert redis.Redis.from_url(restarted.url).get("survives") == b"restart"
    finally:
        embedded.stop_redis(tmp_path)


def test_embedded_postgres_creates_the_database_and_keeps_data_across_restarts(tmp_path):
    first = embedded.ensure_postgres(tmp_path)
    try:
        assert first.started
        with psycopg.connect(first.url, autocommit=True) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("16.")
            assert conn.execute("SELECT current_database()").fetchone()[0] == "molecule"
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('yes')")

        assert not embedded.ensure_postgres(tmp_path).started

        embedded.stop_postgres(tmp_path)
        restarted = embedded.ensure_postgres(tmp_path)
        assert restarted.started
        with psycopg.connect(restarted.url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone()[0] == "yes"
    finally:
        embedded.stop_postgres(tmp_path)


PLATFORM_SECRETS = {
    "ADMIN_TOKEN": "admin-token-env-probe-7d1f",
    "SECRETS_ENCRYPTION_KEY": "encryption-key-env-probe-5b2c",
    "DJANGO_SECRET_KEY": "django-key-env-probe-9e4a",
    "DATABASE_URL": "postgresql://molecule:db-password-env-probe-3c8d@db.example/molecule",
    "REDIS_URL": "redis://:redis-password-env-probe-6f0b@cache.example:6379/0",
    "OPENAI_API_KEY": "sk-env-probe-2a9e",
}


def _environments(process: psutil.Process) -> list[dict[str, str]]:
    return [member.environ() for member in (process, *process.children(recursive=True))]


def test_embedded_servers_start_without_the_platform_s_secrets_in_their_environment(tmp_path, monkeypatch):
    for name, value in PLATFORM_SECRETS.items():
        monkeypatch.setenv(name, value)
    embedded.ensure_redis(tmp_path)
    try:
        embedded.ensure_postgres(tmp_path)
        try:
            redis_server = psutil.Process(int((tmp_path / "redis" / "redis.pid").read_text()))
            postmaster = psutil.Process(int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0]))
            # Redis and PostgreSQL's children write their process titles over the block, the
            # postmaster keeps it: it shows the environment was built from the host's allow-list.
            assert "PATH" in postmaster.environ()
            for environment in _environments(redis_server) + _environments(postmaster):
                leaked = [name for name, value in PLATFORM_SECRETS.items() if value in "\0".join(environment.values())]
                assert leaked == []
        finally:
            embedded.stop_postgres(tmp_path)
    finally:
        embedded.stop_redis(tmp_path)
    assert os.environ["ADMIN_TOKEN"] == PLATFORM_SECRETS["ADMIN_TOKEN"]  # our own environment is intact


def test_the_embedded_redis_keeps_its_data_where_only_the_platform_s_user_can_read_it(tmp_path):
    embedded.ensure_redis(tmp_path)
    try:
        assert stat.S_IMODE((tmp_path / "redis").stat().st_mode) == 0o700
    finally:
        embedded.stop_redis(tmp_path)
