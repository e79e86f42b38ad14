"""`python -m molecule_runtime.mcp_server` as a real subprocess (stdio, one JSON object per line)
talking to the fake platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from molecule_runtime.platform import PlatformClient
from molecule_runtime.tools import build_tools, tool_schemas

RUNTIME_DIR = Path(__file__).resolve().parents[1]
TOKEN = "mcp-test-token"


class MCPProcess:
    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.mcp_server"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.next_id = 0

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"server closed stdout; stderr: {self.proc.stderr.read()}"
        return json.loads(line)

    def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        response = self.read()
        assert response["id"] == self.next_id and response["jsonrpc"] == "2.0"
        return response

    def close(self) -> int:
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()


@pytest.fixture
def mcp(fake_platform, workspace_id, config_dir):
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}
    env = {k: v for k, v in os.environ.items() if k not in ("MOLECULE_AUTH_TOKEN", "CONFIGS_DIR")}
    env.update(WORKSPACE_ID=workspace_id, PLATFORM_URL=fake_platform.base_url, WORKSPACE_CONFIG_PATH=str(config_dir),
               PYTHONPATH=str(RUNTIME_DIR))
    server = MCPProcess(env)
    yield server
    if server.proc.poll() is None:
        server.close()


def test_initialize_tools_list_and_a_notification(mcp, workspace_id, config_dir):
    out = mcp.request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                     "clientInfo": {"name": "test", "version": "0"}})
    assert out["result"] == {"protocolVersion": "2024-11-05", "capabilities": {"tools": {"listChanged": False}},
                             "serverInfo": {"name": "a2a-delegation", "version": "1.0.0"}}
    mcp.send({"jsonrpc": "2.0", "method": "notifications/initialized"})  # no answer
    tools = mcp.request("tools/list")["result"]["tools"]  # the next line is this answer, not one for the notification
    expected = tool_schemas(build_tools(PlatformClient(platform_url="http://x", workspace_id=workspace_id,
                                                       config_dir=config_dir)))
    assert [t["name"] for t in tools] == [s["function"]["name"] for s in expected]
    assert {"delegate_task", "delegate_task_async", "check_delegation_status", "list_peers",
            "send_message_to_user", "commit_memory", "search_memory"} <= {t["name"] for t in tools}
    memory = next(t for t in tools if t["name"] == "commit_memory")
    assert memory["inputSchema"] == {"type": "object", "properties": {"content": {"type": "string"},
                                                                      "scope": {"type": "string"}},
                                     "required": ["content"]}
    assert memory["description"].startswith("Save a fact to long-term memory")
    assert mcp.close() == 0


def test_newer_protocol_version_is_echoed_and_unknown_ones_get_the_default(mcp):
    assert mcp.request("initialize", {"protocolVersion": "2025-06-18"})["result"]["protocolVersion"] == "2025-06-18"
    assert mcp.request("initialize", {"protocolVersion": "1999-01-01"})["result"]["protocolVersion"] == "2024-11-05"


def test_tools_call_commit_memory_reaches_the_platform(mcp, fake_platform, workspace_id):
    mcp.request("initialize", {"protocolVersion": "2024-11-05"})
    out = mcp.request("tools/call", {"name": "commit_memory",
                                     "arguments": {"content": "MCP remembers this", "scope": "team"}})
    [req] = fake_platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "MCP remembers this", "scope": "TEAM"}
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    memory_id = fake_platform.memories[0]["id"]
    result = out["result"]
    assert result["isError"] is False
    [content] = result["content"]
    assert content["type"] == "text"
    assert json.loads(content["text"]) == {"success": True, "id": memory_id, "scope": "TEAM"}


def test_tool_errors_are_is_error_results(mcp, fake_platform):
    bad_scope = mcp.request("tools/call", {"name": "commit_memory", "arguments": {"content": "x", "scope": "WORLD"}})
    assert bad_scope["result"]["isError"] is True
    assert "scope must be LOCAL, TEAM, or GLOBAL" in bad_scope["result"]["content"][0]["text"]
    assert fake_platform.memories == []
    unknown = mcp.request("tools/call", {"name": "no_such_tool", "arguments": {}})
    assert unknown["result"]["isError"] is True and "unknown tool 'no_such_tool'" in unknown["result"]["content"][0]["text"]
    wrong_args = mcp.request("tools/call", {"name": "commit_memory", "arguments": {"text": "x"}})
    assert wrong_args["result"]["isError"] is True and "bad arguments for commit_memory" in \
        wrong_args["result"]["content"][0]["text"]


def test_unknown_method_ping_and_garbage(mcp):
    out = mcp.request("resources/list")
    assert out["error"]["code"] == -32601 and "resources/list" in out["error"]["message"]
    assert mcp.request("ping")["result"] == {}
    mcp.proc.stdin.write("this is not json\n")
    mcp.proc.stdin.flush()
    assert mcp.read() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
    assert mcp.request("ping")["result"] == {}  # still serving


def test_missing_workspace_id_exits_non_zero(config_dir):
    env = {k: v for k, v in os.environ.items() if k != "WORKSPACE_ID"}
    env.update(PYTHONPATH=str(RUNTIME_DIR), WORKSPACE_CONFIG_PATH=str(config_dir))
    proc = subprocess.run([sys.executable, "-m", "molecule_runtime.mcp_server"], env=env, input="",
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "WORKSPACE_ID" in proc.stderr
