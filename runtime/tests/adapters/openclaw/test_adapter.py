"""OpenClawAdapter: identity, settings (prefix → URL, key order), preflight (missing CLI / key),
real setup (onboard + gateway health, private state, patched config) and shutdown, smoke mode."""

import asyncio
import json
import os
import stat
import sys
import uuid

import httpx
import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.openclaw import Adapter, OpenClawExecutor
from molecule_runtime.adapters.openclaw.adapter import INSTALL_HINT, resolve_openclaw_settings
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight

from ...a2a_helpers import msg03, rpc
from ...conftest import write_config
from ..conftest import process_env, run_cli
from .conftest import LLM_KEY, NPM_BIN, PROMPT, start_openclaw

CONFIG = "runtime: openclaw\nmodel: openai:gpt-4o-mini\n"


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_registry_and_config_schema():
    assert get_adapter("openclaw", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("openclaw", "OpenClaw")
    assert "gateway" in adapter.description()
    assert not any(adapter.capabilities().to_dict().values())
    schema = adapter.get_config_schema()
    assert schema["context_window"] == {"type": "integer", "default": 1_000_000}
    assert schema["max_tokens"] == {"type": "integer", "default": 16_384}
    assert schema["gateway_health_checks"]["default"] == 15
    assert schema["timeout"]["default"] == 120


@pytest.mark.parametrize("model, env, provider, url, key", [
    ("openai:gpt-4o", {"OPENAI_API_KEY": "o"}, "openai", "https://api.openai.com/v1", "o"),
    ("gpt-4o", {"GROQ_API_KEY": "g", "OPENROUTER_API_KEY": "r"}, "openai", "https://api.openai.com/v1", "g"),
    ("openai:gpt-4o", {"OPENROUTER_API_KEY": "r"}, "openai", "https://api.openai.com/v1", "r"),
    ("groq:llama-3.3-70b", {"GROQ_API_KEY": "g", "OPENAI_API_KEY": "o"}, "groq", "https://api.groq.com/openai/v1", "g"),
    ("openrouter:x/y", {"OPENROUTER_API_KEY": "r"}, "openrouter", "https://openrouter.ai/api/v1", "r"),
    ("qianfan:ernie-4.0", {"AISTUDIO_API_KEY": "a", "OPENAI_API_KEY": "o"}, "qianfan", "https://qianfan.baidubce.com/v2", "a"),
    ("qianfan:ernie-4.0", {"QIANFAN_API_KEY": "q", "AISTUDIO_API_KEY": "a"}, "qianfan", "https://qianfan.baidubce.com/v2", "q"),
    ("openai:gpt-4o", {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "o"}, "openai",
     "http://127.0.0.1:9/v1", "o"),
])
def test_model_prefix_picks_the_url_and_the_key_order(model, env, provider, url, key):
    settings = resolve_openclaw_settings(model, {}, env)
    assert (settings.provider, settings.base_url, settings.api_key) == (provider, url, key)
    assert ":" not in settings.model


def test_qianfan_without_a_key_names_its_variable(tmp_path):
    report = _preflight(tmp_path, "runtime: openclaw\nmodel: qianfan:ernie-4.0\n",
                        {"PATH": str(NPM_BIN), "OPENAI_API_KEY": "o"})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "QIANFAN_API_KEY is not set" in failure.detail


def test_preflight_passes_with_the_cli_and_a_key(tmp_path):
    report = _preflight(tmp_path, CONFIG, {"PATH": str(NPM_BIN), "OPENAI_API_KEY": "sk-x"})
    assert report.ok and report.warnings == []


def test_preflight_names_a_missing_cli_even_in_smoke_mode(tmp_path):
    for smoke in (False, True):
        report = _preflight(tmp_path, CONFIG, {"PATH": str(tmp_path), "OPENAI_API_KEY": "sk-x"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency"
        assert "needs the openclaw CLI (npm package openclaw, Node >= 24.16)" in failure.detail
        assert failure.fix == INSTALL_HINT == "npm install -g node@24.21.0 && npm install -g openclaw@2026.9.6"


def test_preflight_names_a_missing_key_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, CONFIG, {"PATH": str(NPM_BIN)})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "OPENAI_API_KEY is not set" in failure.detail
    report = _preflight(tmp_path, CONFIG, {"PATH": str(NPM_BIN)}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_rejects_a_bad_number(tmp_path):
    report = _preflight(tmp_path, CONFIG + "runtime_config: {context_window: lots}\n",
                        {"PATH": str(NPM_BIN), "OPENAI_API_KEY": "k"})
    [failure] = report.failures
    assert failure.title == "Invalid runtime_config" and "context_window must be an integer" in failure.detail


def test_setup_fails_naming_the_missing_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    with pytest.raises(RuntimeError, match="needs the openclaw CLI on PATH: npm install -g node@24.21.0"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY", "OPENAI_BASE_URL", "MODEL_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path))))


def test_cli_exits_non_zero_naming_the_missing_cli(tmp_path):
    config_dir = write_config(tmp_path / "configs", CONFIG)
    env = process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir), PLATFORM_URL="http://127.0.0.1:9",
                      OPENAI_API_KEY="sk-x", PATH=os.path.dirname(sys.executable))
    proc = run_cli(env)
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'openclaw' needs the openclaw CLI" in proc.stderr


def _probe_cli(tmp_path):
    """An `openclaw` on PATH that only records that it was run (smoke mode must never run it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "openclaw-calls.txt"
    probe = bin_dir / "openclaw"
    probe.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    probe.chmod(probe.stat().st_mode | stat.S_IEXEC)
    return bin_dir, calls


def test_smoke_mode_passes_without_spawning_anything(tmp_path):
    bin_dir, calls = _probe_cli(tmp_path)
    config_dir = write_config(tmp_path / "configs", CONFIG)
    (config_dir / "system-prompt.md").write_text("x")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PATH=f"{bin_dir}{os.pathsep}{os.path.dirname(sys.executable)}:/usr/bin:/bin"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr
    assert not calls.exists()  # no onboard, no gateway, no agent run


def test_smoke_mode_setup_builds_an_executor_that_spawns_nothing(tmp_path, monkeypatch):
    bin_dir, calls = _probe_cli(tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, OpenClawExecutor) and executor.cli is None
    assert adapter.gateway is None and adapter.state_dir is None and not calls.exists()


def test_setup_onboards_in_a_private_state_dir_and_shutdown_stops_the_gateway(
        tmp_path, _fake_openai_server, _fake_platform_server):
    home = tmp_path / "user-home"
    home.mkdir()
    rt = start_openclaw(tmp_path / "configs", platform_url=_fake_platform_server.state.base_url,
                        llm_url=_fake_openai_server.state.base_url, home=home,
                        extra_files={"SOUL.md": "Be calm.", "notes.txt": "not markdown"})
    adapter = rt.adapter
    try:
        gateway = adapter.gateway
        state = adapter.state_dir
        # the gateway answers its health check on the free loopback port it was given
        health = httpx.get(gateway.health_url, timeout=5)
        assert health.status_code == 200 and health.json()["ok"] is True
        # openclaw's state is private: its HOME/OPENCLAW_HOME, mode 0700; the user's HOME is untouched
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert not (home / ".openclaw").exists()
        assert executor_env(rt)["HOME"] == executor_env(rt)["OPENCLAW_HOME"] == str(state)
        assert "OPENAI_API_KEY" not in executor_env(rt)
        # onboarding wrote the custom provider; the key, limits and gateway were patched in
        config = json.loads(adapter.config_file.read_text())
        provider = config["models"]["providers"]["molecule"]
        assert provider["baseUrl"] == _fake_openai_server.state.base_url and provider["apiKey"] == LLM_KEY
        [model] = provider["models"]
        assert (model["id"], model["contextWindow"], model["maxTokens"]) == ("gpt-4o-mini", 1_000_000, 16_384)
        assert config["agents"]["defaults"]["model"]["primary"] == "molecule/gpt-4o-mini"
        assert config["gateway"]["port"] == gateway.port and config["gateway"]["bind"] == "loopback"
        assert config["mcp"]["servers"]["molecule"]["args"] == ["-m", "molecule_runtime.mcp_server"]
        assert stat.S_IMODE(adapter.config_file.stat().st_mode) == 0o600
        # the key never went on a command line (the gateway retitles itself, so check its argv too)
        cmdline = open(f"/proc/{gateway.proc.pid}/cmdline", "rb").read().decode()
        assert LLM_KEY not in cmdline and LLM_KEY not in " ".join(gateway.proc.args)
        assert gateway.proc.args[1:] == ["gateway", "--port", str(gateway.port), "--bind", "loopback"]
        # /configs/*.md are in openclaw's workspace; the assembled prompt is its AGENTS.md
        workspace = state / "workspace"
        assert (workspace / "SOUL.md").read_text() == "Be calm."
        assert (workspace / "system-prompt.md").read_text() == PROMPT
        assert not (workspace / "notes.txt").exists()
        agents_md = (workspace / "AGENTS.md").read_text()
        assert agents_md.startswith(PROMPT) and "commit_memory" in agents_md
    finally:
        proc = adapter.gateway.proc
        rt.stop()
    # shutdown: the gateway and its process group are gone, the port is closed, the temp state removed
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(gateway.health_url, timeout=3)
    assert not state.exists()
    assert adapter.gateway is None


def executor_env(rt) -> dict:
    return rt.executor.env


def test_a_message_without_a_running_gateway_is_an_agent_error(tmp_path, monkeypatch, fake_openai):
    """The executor refuses to run before setup started a gateway (e.g. after smoke-mode setup)."""
    from a2a.server.agent_execution import RequestContext  # noqa: F401 - the real A2A path below
    from molecule_runtime.card import build_agent_card
    from molecule_runtime.server import CardHolder, build_app

    from ...conftest import ThreadServer, free_port

    bin_dir, calls = _probe_cli(tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    config_dir = write_config(tmp_path / "configs", CONFIG)
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(config_dir), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    port = free_port()
    cards = CardHolder(build_agent_card(load_config(config_dir, env={}), f"http://127.0.0.1:{port}", []))
    with ThreadServer(build_app(executor, cards, adapter=adapter), port) as server:
        out = rpc(server.url, "message/send", {"message": msg03("hello", contextId=uuid.uuid4().hex)})
    assert out["result"]["parts"][0]["text"] == (
        "Agent error: the openclaw gateway is not running (smoke mode, or setup did not finish)")
    assert not calls.exists() and fake_openai.requests == []


def test_running_runtime_answers_and_its_gateway_stops_with_it(tmp_path, fake_openai, fake_platform):
    """The whole process: preflight → setup (onboard + gateway) → register; message/send → openclaw →
    the fake model; SIGTERM → the runtime exits 0 and takes the gateway with it (atexit)."""
    import signal
    import subprocess
    import time

    from ...conftest import free_port

    ws = "55555555-5555-4555-8555-555555555555"
    state = tmp_path / "oc-state"
    configs = write_config(tmp_path / "configs", CONFIG + f"runtime_config: {{gateway_health_checks: 120, "
                                                          f"state_dir: {state}}}\n")
    (configs / "system-prompt.md").write_text("You are the process-level OpenClaw agent.")
    fake_openai.script = [{"content": "Answer from the running runtime."}]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", HEARTBEAT_INTERVAL="30",
                      PATH=f"{NPM_BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # onboarding + a gateway start on two shared cores
        while ws not in fake_platform.registered:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "runtime did not register"
            time.sleep(0.2)
        url = fake_platform.registered[ws]["url"]
        out = rpc(url, "message/send", {"message": msg03("hello process")}, timeout=150)
        assert out["result"]["parts"][0]["text"] == "Answer from the running runtime."
        [call] = fake_openai.requests
        assert call.headers["authorization"] == "Bearer sk-process-key"
        port = json.loads((state / ".openclaw" / "openclaw.json").read_text())["gateway"]["port"]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["ok"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=3)
    assert state.is_dir()  # a configured state_dir is kept (sessions survive a restart)
