"""The embedded servers are real, keep their data across restarts and are reused when running."""

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
