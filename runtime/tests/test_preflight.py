import os
import subprocess
import sys

from molecule_runtime.config import load_config
from molecule_runtime.preflight import render_preflight_report, run_preflight

from .conftest import write_config, write_skill


def _report(tmp_path, body, env=None, smoke=False):
    write_config(tmp_path, body)
    return run_preflight(load_config(tmp_path, env={}), tmp_path, env=env or {}, smoke_mode=smoke)


def test_clean_echo_config_passes_with_only_a_prompt_warning(tmp_path):
    report = _report(tmp_path, "runtime: echo\n")
    assert report.ok
    assert [w.title for w in report.warnings] == ["Missing prompt file"]
    (tmp_path / "system-prompt.md").write_text("You are a test.")
    report = _report(tmp_path, "runtime: echo\n")
    assert report.ok and report.warnings == []
    assert render_preflight_report(report) == ""


def test_missing_required_env_fails_and_names_the_variable(tmp_path):
    report = _report(tmp_path, "runtime: echo\nruntime_config: {required_env: [OPENAI_API_KEY, GROQ_API_KEY]}\n",
                     env={"GROQ_API_KEY": "x"})
    assert not report.ok
    assert [f.detail.split()[0] for f in report.failures] == ["OPENAI_API_KEY"]
    text = render_preflight_report(report)
    assert "[FAIL] Missing required env var: OPENAI_API_KEY is not set" in text
    assert "Fix: Set OPENAI_API_KEY via the secrets API" in text


def test_smoke_mode_demotes_required_env_to_warnings(tmp_path):
    report = _report(tmp_path, "runtime: echo\nruntime_config: {required_env: [OPENAI_API_KEY]}\n", smoke=True)
    assert report.ok
    assert any("OPENAI_API_KEY" in w.detail for w in report.warnings)


def test_port_out_of_range_fails(tmp_path):
    report = _report(tmp_path, "runtime: echo\na2a: {port: 70000}\n")
    assert [f.title for f in report.failures] == ["Invalid a2a.port"]


def test_unknown_runtime_fails_naming_it(tmp_path):
    report = _report(tmp_path, "runtime: nosuch\n")
    assert report.failures[0].title == "No adapter installed"
    assert "nosuch" in report.failures[0].detail


def test_broken_adapter_module_fails(tmp_path):
    report = _report(tmp_path, "runtime: echo\n", env={"ADAPTER_MODULE": "no_such_module_xyz"})
    assert report.failures[0].title == "Adapter import failed"
    assert "no_such_module_xyz" in report.failures[0].detail


def test_adapter_name_drift_is_only_a_warning(tmp_path):
    report = _report(tmp_path, "runtime: langgraph\n", env={"ADAPTER_MODULE": "molecule_runtime.adapters.echo"})
    assert report.ok
    assert any(w.title == "Runtime drift" for w in report.warnings)


def test_missing_skill_folder_warns(tmp_path):
    write_skill(tmp_path, "present", "name: present\n")
    report = _report(tmp_path, "runtime: echo\nskills: [present, absent]\n")
    assert report.ok
    assert [w.detail for w in report.warnings if w.title == "Missing skill"] == ["skills/absent/SKILL.md not found"]


def test_legacy_auth_token_file_rule(tmp_path):
    report = _report(tmp_path, "runtime: echo\nruntime_config: {auth_token_file: .token, auth_token_env: TOK}\n")
    assert [f.title for f in report.failures] == ["Missing auth token"]
    report = _report(tmp_path, "runtime: echo\nruntime_config: {auth_token_file: .token, auth_token_env: TOK}\n",
                     env={"TOK": "x"})
    assert report.ok


def test_cli_exits_non_zero_naming_what_is_missing(tmp_path):
    write_config(tmp_path, "runtime: echo\nruntime_config: {required_env: [SOME_PROVIDER_KEY]}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SOME_PROVIDER_KEY", "ADAPTER_MODULE")}
    env.update(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(tmp_path), PLATFORM_URL="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-m", "molecule_runtime.main"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert "SOME_PROVIDER_KEY" in proc.stderr
    assert "FATAL: preflight failed" in proc.stderr


def test_cli_without_workspace_id_exits_non_zero(tmp_path):
    write_config(tmp_path, "runtime: echo\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WORKSPACE_ID", "MOLECULE_SMOKE_MODE")}
    env["WORKSPACE_CONFIG_PATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "molecule_runtime.main"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0
    assert "WORKSPACE_ID" in proc.stderr


def test_cli_bad_config_field_exits_non_zero_naming_it(tmp_path):
    write_config(tmp_path, "runtime: echo\nskills: notalist\n")
    env = dict(os.environ, WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "molecule_runtime.main"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert "'skills'" in proc.stderr
