"""``make run`` end to end: embedded servers, migrate, operator, web + worker + beat, clean stop."""

import urllib.request

from molecule_site import embedded
from molecule_site.tests.launch import Launch, free_port


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_run_starts_everything_stops_cleanly_and_reuses_data(tmp_path):
    port = free_port()
    first = Launch(tmp_path, port)
    try:
        first.wait_for("Molecule platform on", "launcher: ready", "celery@", "beat: Starting")
        assert "Created operator account 'admin' with password" in first.output
        assert f"admin:   http://localhost:{port}/django-admin/" in first.output
        assert get(f"http://127.0.0.1:{port}/health") == (200, b'{"status":"ok"}')
        status, body = get(f"http://127.0.0.1:{port}/django-admin/login/")
        assert status == 200 and b'name="password"' in body
    finally:
        code = first.stop()
    assert code == 0, first.output
    assert "launcher: stopping" in first.output
    redis_port = int((tmp_path / "redis" / "redis.port").read_text())
    assert not embedded._redis_ping(redis_port)
    assert not embedded._postgres_running(embedded._pgdata(tmp_path))

    second = Launch(tmp_path, port)
    try:
        second.wait_for("Molecule platform on", "launcher: ready")
        assert "Created operator account" not in second.output  # same database, operator kept
    finally:
        assert second.stop() == 0
