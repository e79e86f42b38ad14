"""Fixtures for the cli adapter tests: the real `codex` CLI (npm `@openai/codex`, in
`.molecule/npm`) against the fake OpenAI server's Responses API over HTTP, our MCP server
against the fake platform, and a tiny python script as the `custom` preset's command.

The CLI comes from `MOLECULE_NPM_BIN` if set, else `<repo>/.molecule/npm/node_modules/.bin`
(`npm install --prefix .molecule/npm @openai/codex@0.171.0`).
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from molecule_runtime.adapters.cli.adapter import CODEX_NPM_PACKAGE

REPO = Path(__file__).resolve().parents[4]
NPM_BIN = Path(os.environ.get("MOLECULE_NPM_BIN") or REPO / ".molecule" / "npm" / "node_modules" / ".bin")

# The custom preset's command: records what it got, then acts on the message.
AGENT_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    record = os.environ["CLI_TEST_RECORD"]
    stdin = "" if sys.stdin is None or sys.stdin.closed else sys.stdin.read()
    with open(record, "a") as fh:
        fh.write(json.dumps({"argv": sys.argv[1:], "stdin": stdin, "pid": os.getpid(),
                             "env": {k: v for k, v in os.environ.items() if k.startswith("MOLECULE_") or k == "TRACEPARENT"}}) + "\\n")
    text = " ".join(sys.argv[1:]) + " " + stdin
    if "please fail" in text:
        print("starting up", flush=True)
        print("loading...\\nfatal: the model rejected OPENAI_API_KEY=sk-live-abcdefghijklmnop1234", file=sys.stderr)
        sys.exit(3)
    if "please hang" in text:
        time.sleep(120)
    print("custom reply to: " + (stdin.strip() or sys.argv[-1]))
''')


def codex_bin() -> Path:
    path = NPM_BIN / "codex"
    assert path.exists(), (f"the codex CLI is not installed at {path}: "
                           f"npm install --prefix {REPO / '.molecule' / 'npm'} {CODEX_NPM_PACKAGE}")
    return path


@pytest.fixture
def codex_path(monkeypatch):
    """PATH with the npm .bin (codex) first; returns the codex path."""
    path = codex_bin()
    monkeypatch.setenv("PATH", f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return path


@pytest.fixture
def cli_env(monkeypatch, fake_platform, tmp_path):
    """PLATFORM_URL for the MCP server codex starts (the llm_runtime fixture passes no PlatformClient)."""
    monkeypatch.setenv("PLATFORM_URL", fake_platform.base_url)
    for name in ("CONFIGS_DIR", "MOLECULE_AUTH_TOKEN", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def agent_script(tmp_path, monkeypatch):
    """(python, script path, read_records()) for the custom preset."""
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    record = tmp_path / "records.jsonl"
    monkeypatch.setenv("CLI_TEST_RECORD", str(record))

    def records() -> list[dict]:
        import json

        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

    return sys.executable, script, records
