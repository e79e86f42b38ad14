"""The platform tools as a stdio MCP server ("a2a-delegation", spec/runtime.md §7.2).

CLI runtimes (`cli` adapter's `codex` preset, or any MCP-capable CLI) start it as
`python -m molecule_runtime.mcp_server` and call the same built-in tools the LLM adapters get
(`molecule_runtime.tools.build_tools`, schemas from `tool_schemas`), bound to this workspace.

Protocol: JSON-RPC 2.0, one JSON object per line on stdin/stdout (MCP's stdio transport).
- `initialize` → `protocolVersion` (the client's own when it is one we speak, else
  `2024-11-05`), `capabilities.tools.listChanged=false`, `serverInfo {name: a2a-delegation,
  version: 1.0.0}`.
- `tools/list` → `{tools: [{name, description, inputSchema}]}`.
- `tools/call` `{name, arguments}` → `{content: [{type: text, text: <JSON result>}], isError}`;
  `isError` is true for an unknown tool, bad arguments, or a tool result carrying `error`.
- `ping` → `{}`; notifications (no `id`) are ignored; unknown methods → error -32601; a line
  that is not JSON → -32700.
Logging goes to stderr only (stdout is the protocol).

Environment, read like the runtime (main.py): `WORKSPACE_ID` (required), `PLATFORM_URL`
(default http://localhost:8080), the token from `<CONFIGS_DIR or WORKSPACE_CONFIG_PATH or
/configs>/.auth_token` (re-read per request by PlatformClient) or `MOLECULE_AUTH_TOKEN`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

log = logging.getLogger("molecule_runtime.mcp_server")

SERVER_INFO = {"name": "a2a-delegation", "version": "1.0.0"}
DEFAULT_PROTOCOL = "2024-11-05"
SUPPORTED_PROTOCOLS = ("2024-11-05", "2025-03-26", "2025-06-18")

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


def mcp_tool_list(tools: Mapping[str, Callable]) -> list[dict]:
    """MCP tool descriptors from the OpenAI-style schemas the LLM adapters use."""
    from .tools import tool_schemas

    return [{"name": s["function"]["name"], "description": s["function"]["description"],
             "inputSchema": s["function"]["parameters"]} for s in tool_schemas(dict(tools))]


class MCPServer:
    """Answers MCP JSON-RPC messages with a tool map (name → async callable)."""

    def __init__(self, tools: Mapping[str, Callable]):
        self.tools = dict(tools)

    async def handle(self, message: Any) -> dict | None:
        """One JSON-RPC message → the response (None for a notification)."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(
                message.get("method"), str):
            mid = message.get("id") if isinstance(message, dict) else None
            return _error(mid, INVALID_REQUEST, "Invalid Request")
        if "id" not in message:
            return None  # notifications/initialized, notifications/cancelled…
        mid, method = message["id"], message["method"]
        params = message.get("params") or {}
        if not isinstance(params, dict):
            return _error(mid, INVALID_PARAMS, "params must be an object")
        if method == "initialize":
            asked = params.get("protocolVersion")
            version = asked if asked in SUPPORTED_PROTOCOLS else DEFAULT_PROTOCOL
            return _result(mid, {"protocolVersion": version, "capabilities": {"tools": {"listChanged": False}},
                                 "serverInfo": dict(SERVER_INFO)})
        if method == "ping":
            return _result(mid, {})
        if method == "tools/list":
            return _result(mid, {"tools": mcp_tool_list(self.tools)})
        if method == "tools/call":
            return _result(mid, await self.call(params.get("name"), params.get("arguments")))
        return _error(mid, METHOD_NOT_FOUND, f"Method not found: {method}")

    async def call(self, name: Any, arguments: Any) -> dict:
        from .adapters.shared_runtime import run_tool_for_model

        if not isinstance(name, str) or name not in self.tools:
            return _text(json.dumps({"error": f"unknown tool {name!r} (available: {', '.join(sorted(self.tools))})"}),
                         True)
        text = await run_tool_for_model(self.tools, name, arguments if arguments is not None else {})
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        failed = isinstance(parsed, dict) and bool(parsed.get("error")) and parsed.get("success") is not True
        return _text(text, failed)


def _text(text: str, is_error: bool) -> dict:
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def _result(mid: Any, result: dict) -> dict:
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def _error(mid: Any, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": message}}


def platform_tools(env: Mapping[str, str] | None = None) -> tuple[dict[str, Callable], Any]:
    """The built-in tools bound to this workspace's PlatformClient (env as main.py reads it)."""
    from .platform import PlatformClient
    from .tools import build_tools

    env = os.environ if env is None else env
    workspace_id = env.get("WORKSPACE_ID") or ""
    if not workspace_id:
        raise SystemExit("FATAL: WORKSPACE_ID env var is not set")
    config_path = Path(env.get("WORKSPACE_CONFIG_PATH") or "/configs")
    client = PlatformClient(platform_url=env.get("PLATFORM_URL") or "http://localhost:8080",
                            workspace_id=workspace_id, config_dir=Path(env.get("CONFIGS_DIR") or config_path),
                            initial_token=env.get("MOLECULE_AUTH_TOKEN"))
    return dict(build_tools(client)), client


async def serve(reader: asyncio.StreamReader, write: Callable[[bytes], None], server: MCPServer) -> None:
    """Read line-delimited JSON-RPC until EOF; requests are answered concurrently, in any order."""
    pending: set[asyncio.Task] = set()

    async def answer(message: Any) -> None:
        try:
            response = await server.handle(message)
        except Exception as exc:  # noqa: BLE001 — a server bug must not kill the session
            log.exception("MCP request failed")
            mid = message.get("id") if isinstance(message, dict) else None
            response = _error(mid, -32603, f"Internal error: {type(exc).__name__}: {exc}")
        if response is not None:
            write((json.dumps(response, ensure_ascii=False) + "\n").encode())

    while True:
        line = await reader.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            write((json.dumps(_error(None, PARSE_ERROR, "Parse error")) + "\n").encode())
            continue
        task = asyncio.ensure_future(answer(message))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


async def amain() -> int:
    tools, client = platform_tools()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()

    try:
        await serve(reader, write, MCPServer(tools))
    finally:
        await client.aclose()
    return 0


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(asyncio.run(amain()))


if __name__ == "__main__":
    main()
