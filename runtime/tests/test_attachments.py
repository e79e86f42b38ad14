"""Chat attachments in the runtime: send_message_to_user uploads then notifies, incoming FileParts
reach the adapter as local files, replies carry files back as FileParts (runtime.md §3.5, §7)."""

from __future__ import annotations

import asyncio
import base64
import uuid

import pytest

from a2a_helpers import rpc
from conftest import ThreadServer, free_port, write_config
from molecule_runtime.adapters.echo.executor import EchoExecutor
from molecule_runtime.attachments import ChatFiles, files_to_send, safe_name
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import load_config
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import build_tools, tool_schemas

TOKEN = "attachments-test-token"
UPLOADS = "/workspace/.molecule/chat-uploads"


@pytest.fixture
def authed(fake_platform, config_dir, workspace_id):
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}
    return fake_platform


@pytest.fixture
def workspace_root(tmp_path, monkeypatch):
    root = tmp_path / "workspace"
    root.mkdir()
    monkeypatch.setenv("WORKSPACE_DIR", str(root))
    return root


@pytest.fixture
def call(make_client):
    def run(name, *args, **kwargs):
        async def scenario():
            client = make_client()
            try:
                return await build_tools(client)[name](*args, **kwargs)
            finally:
                await client.aclose()

        return asyncio.run(scenario())

    return run


# --- send_message_to_user ------------------------------------------------------------------------------

def test_send_message_to_user_uploads_the_files_then_notifies(authed, call, tmp_path, workspace_id):
    report = tmp_path / "report.txt"
    report.write_bytes(b"all green\n")
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG")
    result = call("send_message_to_user", "Done", attachments=[str(report), str(chart)])
    assert result == {"success": True, "message": "Message sent to user with 2 attachment(s)"}

    paths = [r.path for r in authed.requests]
    assert paths == [f"/workspaces/{workspace_id}/chat/uploads", f"/workspaces/{workspace_id}/notify"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in authed.requests)
    [uploaded] = authed.uploads
    assert [(f["name"], f["mimeType"], f["size"]) for f in uploaded] == [
        ("report.txt", "text/plain", 10), ("chart.png", "image/png", 4)]
    assert [authed.chat_files[f["uri"]][0] for f in uploaded] == [b"all green\n", b"\x89PNG"]
    assert authed.notifications == [{"message": "Done", "attachments": uploaded}]


def test_send_message_to_user_reads_workspace_paths_from_the_local_workspace(authed, call, workspace_root):
    (workspace_root / "out").mkdir()
    (workspace_root / "out" / "summary.md").write_text("# Summary")
    result = call("send_message_to_user", "See attached", attachments=["/workspace/out/summary.md"])
    assert result["success"] is True
    [[uploaded]] = authed.uploads
    assert authed.chat_files[uploaded["uri"]][0] == b"# Summary"


@pytest.mark.parametrize(("attachment", "error"), [
    ("/nonexistent/file.txt", "attachment not found: /nonexistent/file.txt"),
    ("relative.txt", "attachments must be absolute paths, not 'relative.txt'"),
    ("/workspace/../etc/passwd", "attachment not found: /workspace/../etc/passwd"),
])
def test_send_message_to_user_refuses_what_it_cannot_send_before_any_request(authed, call, workspace_root,
                                                                             attachment, error):
    assert call("send_message_to_user", "x", attachments=[attachment]) == {"success": False, "error": error}
    assert authed.requests == []


def test_files_over_the_platform_limits_are_refused_locally(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(25 * 1024 * 1024 + 1)  # sparse: no 25 MiB written
    with pytest.raises(ValueError, match="larger than 25 MiB"):
        files_to_send([str(big)], tmp_path)
    half = tmp_path / "half.bin"
    with open(half, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    with pytest.raises(ValueError, match="larger than 50 MiB in total"):
        files_to_send([str(half)] * 3, tmp_path)


def test_the_tool_schema_offers_attachments_as_a_list_of_paths(make_client):
    async def scenario():
        client = make_client()
        tools = build_tools(client)
        await client.aclose()
        return tools

    schema = {s["function"]["name"]: s["function"] for s in tool_schemas(asyncio.run(scenario()))}
    parameters = schema["send_message_to_user"]["parameters"]
    assert parameters["properties"]["attachments"] == {"type": "array", "items": {"type": "string"}}
    assert parameters["required"] == ["message"]


# --- the echo runtime with attachments -----------------------------------------------------------------

@pytest.fixture
def echo(tmp_path, authed, make_client, workspace_root):
    """An echo runtime whose attachments go through the fake platform."""
    client = make_client()
    executor = EchoExecutor(chat_files=ChatFiles(root=workspace_root, platform=client))
    config = load_config(write_config(tmp_path / "agent-configs"), env={})
    port = free_port()
    cards = CardHolder(build_agent_card(config, f"http://127.0.0.1:{port}", []))
    with ThreadServer(build_app(executor, cards), port) as server:
        server.root = workspace_root
        yield server


def send(url: str, *parts: dict) -> dict:
    message = {"role": "user", "messageId": uuid.uuid4().hex, "parts": list(parts)}
    out = rpc(url, "message/send", {"message": message})
    assert "result" in out, out
    return out["result"]


def text(value: str) -> dict:
    return {"kind": "text", "text": value}


def file_uri(uri: str, name: str, mime: str = "text/plain") -> dict:
    return {"kind": "file", "file": {"uri": uri, "name": name, "mimeType": mime}}


def test_an_uploaded_file_part_reaches_the_adapter_as_a_local_path(echo):
    local = echo.root / ".molecule" / "chat-uploads" / f"{'a' * 32}-notes.txt"
    local.parent.mkdir(parents=True)
    local.write_text("the notes")
    result = send(echo.url, text("summarise this"),
                  file_uri(f"workspace:{UPLOADS}/{'a' * 32}-notes.txt", "notes.txt"))
    assert result["parts"][0]["text"] == (
        f"echo: summarise this\n\nAttached files:\n- notes.txt (text/plain) at {local.resolve()}")


def test_a_file_part_not_in_the_local_workspace_is_fetched_from_the_platform(echo, authed, workspace_id):
    uri = f"workspace:{UPLOADS}/{'b' * 32}-data.csv"
    authed.chat_files[uri] = (b"a,b\n1,2\n", "text/csv")
    reply = send(echo.url, text("load it"), file_uri(uri, "data.csv", "text/csv"))["parts"][0]["text"]
    path = reply.rsplit(" at ", 1)[1]
    assert reply.startswith("echo: load it\n\nAttached files:\n- data.csv (text/csv) at ")
    with open(path, "rb") as handle:
        assert handle.read() == b"a,b\n1,2\n"
    [download] = authed.requests_to(f"/workspaces/{workspace_id}/chat/download")
    assert (download.query, download.headers["authorization"]) == ({"path": uri}, f"Bearer {TOKEN}")


def test_an_inline_file_part_is_saved_for_the_adapter(echo):
    data = bytes(range(256))
    part = {"kind": "file", "file": {"bytes": base64.b64encode(data).decode(), "name": "../../raw.bin",
                                     "mimeType": "application/octet-stream"}}
    reply = send(echo.url, part)["parts"][0]["text"]
    path = reply.rsplit(" at ", 1)[1]
    assert reply.startswith("echo: Attached files:\n- raw.bin (application/octet-stream) at ")
    assert path.startswith(str(echo.root / ".molecule" / "chat-uploads"))
    with open(path, "rb") as handle:
        assert handle.read() == data


def test_a_file_part_outside_the_workspace_is_listed_as_unavailable(echo, tmp_path):
    (tmp_path / "secret.txt").write_text("host secret")
    reply = send(echo.url, text("read"), file_uri("/workspace/../secret.txt", "secret.txt"))["parts"][0]["text"]
    assert reply == ("echo: read\n\nAttached files:\n- secret.txt (text/plain) unavailable: "
                     "not a file of this workspace: /workspace/../secret.txt")


def test_echo_attach_replies_with_an_uploaded_file_part(echo, authed):
    (echo.root / "result.json").write_text('{"ok": true}')
    result = send(echo.url, text("/attach /workspace/result.json here it is"))
    assert result["parts"][0] == {"kind": "text", "text": "here it is"}
    [[uploaded]] = authed.uploads
    assert result["parts"][1] == {"kind": "file", "file": {"uri": uploaded["uri"], "name": "result.json",
                                                           "mimeType": "application/json"}}
    assert authed.chat_files[uploaded["uri"]][0] == b'{"ok": true}'


def test_echo_attach_of_a_missing_file_is_an_agent_error(echo, authed):
    result = send(echo.url, text("/attach /workspace/missing.txt"))
    assert result["parts"] == [{"kind": "text", "text": "Agent error: attachment not found: /workspace/missing.txt"}]
    assert authed.uploads == []


def test_without_a_platform_a_reply_file_travels_inline(tmp_path):
    (tmp_path / "out.txt").write_text("inline")
    part = asyncio.run(ChatFiles(root=tmp_path).file_part(str(tmp_path / "out.txt")))
    assert (part.raw, part.filename, part.media_type) == (b"inline", "out.txt", "text/plain")


def test_workspace_files_a_reply_mentions_become_file_parts(authed, make_client, workspace_root):
    (workspace_root / "report.pdf").write_bytes(b"%PDF")

    async def scenario():
        client = make_client()
        try:
            return await ChatFiles(root=workspace_root, platform=client).reply_parts(
                "Wrote /workspace/report.pdf. Not /workspace/missing.txt, nor /etc/passwd.")
        finally:
            await client.aclose()

    [part] = asyncio.run(scenario())
    assert (part.filename, part.media_type) == ("report.pdf", "application/pdf")
    assert authed.chat_files[part.url][0] == b"%PDF"


@pytest.mark.parametrize(("given", "expected"), [("../x/.env", "env"), ("a\nb.txt", "ab.txt"), ("", "file")])
def test_incoming_names_are_made_safe(given, expected):
    assert safe_name(given) == expected
