"""The workspace image builds and passes smoke mode (needs a Docker engine; skipped without one).

CI makes the engine available with `../shared/tools/docker-engine-up` before `make test`.
"""

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

RUNTIME_DIR = Path(__file__).resolve().parents[1]


def _docker_ok() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


pytestmark = pytest.mark.skipif(not _docker_ok(), reason="no Docker engine (run ../shared/tools/docker-engine-up)")


@pytest.fixture(scope="module")
def image():
    tag = f"molecule-runtime-test:{uuid.uuid4().hex[:8]}"
    build = subprocess.run(["docker", "build", "-q", "-t", tag, str(RUNTIME_DIR)], capture_output=True, text=True,
                           timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


def _smoke(image, config_dir, *extra_env):
    # The image runs the runtime as its own unprivileged user (uid 1000): the bind mount must be
    # readable by others (pytest makes its temporary directories 0700).
    config_dir.chmod(0o755)
    env = ["-e", "MOLECULE_SMOKE_MODE=1", "-e", "MOLECULE_SMOKE_TIMEOUT_SECS=10", "-e", "WORKSPACE_ID=fake-smoke"]
    for item in extra_env:
        env += ["-e", item]
    return subprocess.run(["docker", "run", "--rm", "--network", "none", *env,
                           "-v", f"{config_dir}:/configs:ro", image], capture_output=True, text=True, timeout=180)


def test_image_passes_smoke_mode(image, tmp_path):
    (tmp_path / "config.yaml").write_text("name: Smoke\nruntime: echo\n")
    proc = _smoke(image, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout


def test_image_smoke_fails_on_a_broken_adapter_module(image, tmp_path):
    (tmp_path / "config.yaml").write_text("name: Smoke\nruntime: echo\n")
    proc = _smoke(image, tmp_path, "ADAPTER_MODULE=no_such_adapter")
    assert proc.returncode != 0
    assert "no_such_adapter" in proc.stderr


@pytest.mark.parametrize("runtime, model", [("langgraph", "openai:gpt-4.1-mini"), ("openai", "ollama:llama3.1")])
def test_image_smoke_passes_for_the_llm_runtimes_without_network(image, tmp_path, runtime, model):
    """The LLM extras are in the image: their lazy imports run and the call stops at the network."""
    (tmp_path / "config.yaml").write_text(f"name: Smoke\nruntime: {runtime}\nmodel: {model}\n"
                                          "runtime_config: {max_retries: 0}\n")
    proc = _smoke(image, tmp_path, "OPENAI_API_KEY=sk-fake-smoke-key")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
