"""Built-in agent tools against the fake platform: request path, body, headers and return value."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import load_config
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import DELEGATION_FAILED_HINT, build_tools, tool_schemas

from .a2a_helpers import send03
from .conftest import ThreadServer, free_port, write_config

TOKEN = "tools-token"


@pytest.fixture
def authed(fake_platform, config_dir, workspace_id):
    """A workspace that already holds a token the fake platform accepts."""
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}
    return fake_platform


@pytest.fixture
def call(make_client):
    """call("tool_name", *args, **kwargs) runs one tool in a fresh event loop with a fresh client."""

    def run(name, *args, **kwargs):
        async def scenario():
            client = make_client()
            try:
                result = await build_tools(client)[name](*args, **kwargs)
            finally:
                await client.aclose()
            json.dumps(result)  # always JSON-serialisable
            return result

        return asyncio.run(scenario())

    return run


def assert_auth(req, *, source: bool, workspace_id: str):
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    if source:
        assert req.headers["x-workspace-id"] == workspace_id


# ------------------------------------------------------------------------------ memory
def test_commit_memory_posts_upper_cased_scope_and_logs_activity(authed, call, workspace_id):
    result = call("commit_memory", "The deploy key lives in vault", scope="team")

    [req] = authed.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "The deploy key lives in vault", "scope": "TEAM"}
    assert_auth(req, source=False, workspace_id=workspace_id)
    memory_id = authed.memories[0]["id"]
    assert result == {"success": True, "id": memory_id, "scope": "TEAM"}

    [act] = authed.requests_to(f"/workspaces/{workspace_id}/activity", "POST")
    assert act.json["activity_type"] == "memory_write"
    assert act.json["summary"] == f"[TEAM] The deploy key lives in vault (id={memory_id[:24]})"


def test_commit_memory_redacts_secrets_before_sending(authed, call, workspace_id):
    call("commit_memory", "openai key sk-abcdefghijklmnopqrstuvwxyz123456 and AKIAABCDEFGHIJKLMNOP")
    [req] = authed.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json["content"] == "openai key [REDACTED:SK_TOKEN] and [REDACTED:AWS_ACCESS_KEY]"
    assert req.json["scope"] == "LOCAL"


def test_commit_memory_rejects_bad_scope_without_calling_the_platform(authed, call):
    assert call("commit_memory", "x", scope="everyone") == {"error": "scope must be LOCAL, TEAM, or GLOBAL"}
    assert authed.requests == []


def test_commit_memory_returns_platform_error_as_dict(authed, call, workspace_id):
    authed.tokens[workspace_id] = {"someone-else"}
    result = call("commit_memory", "x")
    assert result == {"success": False, "error": "HTTP 401: invalid workspace auth token"}


def test_search_memory_sends_query_and_scope(authed, call, workspace_id):
    authed.memories.append({"id": "m1", "workspace_id": "other", "content": "Team standup is at 9",
                            "scope": "TEAM", "namespace": "general", "created_at": "t"})
    result = call("search_memory", "standup", scope="team")

    [req] = authed.requests_to(f"/workspaces/{workspace_id}/memories", "GET")
    assert req.query == {"q": "standup", "scope": "TEAM"}
    assert_auth(req, source=False, workspace_id=workspace_id)
    assert result["success"] is True and result["count"] == 1
    assert result["memories"][0]["content"] == "Team standup is at 9"


def test_search_memory_without_arguments_sends_no_empty_params(authed, call, workspace_id):
    assert call("search_memory") == {"success": True, "count": 0, "memories": []}
    [req] = authed.requests_to(f"/workspaces/{workspace_id}/memories", "GET")
    assert req.query == {}


def test_memory_uses_awareness_when_configured(authed, call, workspace_id, monkeypatch):
    monkeypatch.setenv("AWARENESS_URL", authed.base_url + "/_awareness")
    assert call("commit_memory", "remember me", scope="local") == {"success": True, "id": "aw-1", "scope": "LOCAL"}
    found = call("search_memory", "remember")

    ns = f"workspace:{workspace_id}"
    [post] = authed.requests_to(f"/_awareness/api/v1/namespaces/{ns}/memories", "POST")
    assert post.json == {"content": "remember me", "scope": "LOCAL"}
    assert found["count"] == 1 and found["memories"][0]["content"] == "remember me"
    assert authed.requests_to(f"/workspaces/{workspace_id}/memories") == []


# ------------------------------------------------------------------------------ peers
def test_list_peers_returns_peers_and_sends_caller_headers(authed, call, workspace_id):
    authed.add_peer(workspace_id, "peer-qa", name="QA", role="qa")
    result = call("list_peers")

    [req] = authed.requests_to(f"/registry/{workspace_id}/peers")
    assert_auth(req, source=True, workspace_id=workspace_id)
    assert result == {"success": True, "count": 1, "peers": [
        {"id": "peer-qa", "name": "QA", "role": "qa", "status": "online", "tier": 1, "parent_id": None,
         "active_tasks": 0},
    ]}


def test_list_peers_when_isolated(authed, call):
    result = call("list_peers")
    assert result["count"] == 0 and "isolated" in result["message"]


# ------------------------------------------------------------------------------ delegate_task (sync)
class PeerListener:
    """A stand-in peer agent on its own loopback port: records every request, answers like echo."""

    def __init__(self):
        self.requests: list[dict] = []  # {"headers": lower-cased, "json": body}
        self.result: dict | None = None  # answer with this result instead of an echo Message
        self._server = None

    def app(self) -> Starlette:
        async def message_send(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "json": body})
            text = body["params"]["message"]["parts"][0]["text"]
            return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": self.result or {
                "kind": "message", "role": "agent", "messageId": "m-1", "parts": [{"kind": "text", "text": f"peer: {text}"}],
            }})

        return Starlette(routes=[Route("/", message_send, methods=["POST"])])


@pytest.fixture
def peer_listener():
    listener = PeerListener()
    with ThreadServer(listener.app(), free_port()) as server:
        listener.url = server.url
        yield listener


def test_delegate_task_goes_through_the_platform_proxy_and_the_peer_never_sees_the_token(
        authed, call, workspace_id, peer_listener):
    authed.add_peer(workspace_id, "peer-dev", name="Dev")
    authed.registered["peer-dev"]["url"] = peer_listener.url
    authed.inbound_secrets["peer-dev"] = "peer-dev-inbound-secret"
    result = call("delegate_task", "peer-dev", "write the tests")

    assert result == {"success": True, "workspace_id": "peer-dev", "peer": "Dev", "response": "peer: write the tests"}
    [disc] = authed.requests_to("/registry/discover/peer-dev")
    assert_auth(disc, source=True, workspace_id=workspace_id)
    [proxied] = authed.requests_to("/workspaces/peer-dev/a2a", "POST")
    assert_auth(proxied, source=True, workspace_id=workspace_id)
    assert proxied.json["jsonrpc"] == "2.0" and proxied.json["method"] == "message/send"
    assert proxied.json["id"].startswith("delegation-")
    message = proxied.json["params"]["message"]
    assert message["role"] == "user" and message["messageId"]
    assert message["parts"] == [{"kind": "text", "text": "write the tests"}]
    assert message["metadata"] == {"source_workspace_id": workspace_id,
                                   "parent_task_id": proxied.json["id"].split("-")[1]}
    # the peer got the task from the platform, with the platform's credential and not ours
    [delivered] = peer_listener.requests
    assert "authorization" not in delivered["headers"]
    assert TOKEN not in json.dumps(delivered)
    assert delivered["headers"]["x-molecule-inbound-secret"] == "peer-dev-inbound-secret"
    assert delivered["json"]["params"]["message"]["parts"] == [{"kind": "text", "text": "write the tests"}]
    kinds = [a.json["activity_type"] for a in authed.requests_to(f"/workspaces/{workspace_id}/activity")]
    assert kinds == ["a2a_send", "a2a_receive"]


TASK_03 = {"kind": "task", "id": "t-1", "contextId": "c-1",
           "artifacts": [{"artifactId": "a-1", "parts": [{"kind": "text", "text": "The tests "},
                                                          {"kind": "text", "text": "are written."}]}],
           "status": {"state": "completed", "message": {"kind": "message", "role": "agent", "messageId": "m-2",
                                                          "parts": [{"kind": "text", "text": "All 12 pass."}]}}}


@pytest.mark.parametrize("result, expected", [
    (TASK_03, "The tests are written.\n\nAll 12 pass."),
    ({"task": {"id": "t-1", "status": {"state": "TASK_STATE_COMPLETED",
                                       "message": {"role": "ROLE_AGENT", "parts": [{"text": "Done in 1.0 shape"}]}}}},
     "Done in 1.0 shape"),
    ({"message": {"role": "ROLE_AGENT", "messageId": "m", "parts": [{"text": "a 1.0 "}, {"text": "Message"}]}},
     "a 1.0 Message"),
], ids=["0.3-task-artifacts-and-status", "1.0-task", "1.0-message"])
def test_delegate_task_reads_every_reply_shape_as_the_peer_sent_it(authed, call, workspace_id, peer_listener,
                                                                    result, expected):
    authed.add_peer(workspace_id, "peer-dev", name="Dev")
    authed.registered["peer-dev"]["url"] = peer_listener.url
    peer_listener.result = result
    assert call("delegate_task", "peer-dev", "write the tests")["response"] == expected


def test_delegate_task_never_posts_to_the_url_discovery_returns(authed, call, workspace_id, peer_listener):
    """The attack: discovery (or whoever controls the peer's registration) names a URL that
    collects bearer tokens. Nothing is sent there; the platform proxy routes the task."""
    authed.add_peer(workspace_id, "peer-dev", name="Dev")
    authed.discover_overrides["peer-dev"] = (200, {"id": "peer-dev", "url": peer_listener.url, "name": "Dev"})
    result = call("delegate_task", "peer-dev", "hi")

    assert peer_listener.requests == []
    assert result["success"] is True and result["response"] == "echo: hi"
    [delivered] = authed.requests_to("/_peers/peer-dev")
    assert "authorization" not in delivered.headers


def test_delegate_task_retries_timeouts_then_returns_an_error(authed, call, workspace_id, monkeypatch):
    authed.add_peer(workspace_id, "peer-slow", name="Slow", mode="sleep:0.5")
    monkeypatch.setenv("DELEGATION_TIMEOUT", "0.1")
    monkeypatch.setenv("DELEGATION_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DELEGATION_RETRY_DELAY", "0.01")

    started = time.monotonic()
    result = call("delegate_task", "peer-slow", "take your time")
    assert time.monotonic() - started < 1.5

    assert result["success"] is False and result["attempts"] == 3
    assert result["error"].startswith("DELEGATION FAILED to Slow: [A2A_ERROR] ReadTimeout")
    assert "[target=peer-slow]" in result["error"]
    assert authed.peer_hits["peer-slow"] == 3
    ids = [r.json["id"] for r in authed.requests_to("/workspaces/peer-slow/a2a")]
    assert len(set(ids)) == 3 and all(i.startswith("delegation-") for i in ids)
    receive = [a.json for a in authed.requests_to(f"/workspaces/{workspace_id}/activity")][-1]
    assert receive["activity_type"] == "a2a_receive" and receive["status"] == "error"


def test_delegate_task_retries_dropped_connections_then_succeeds(authed, call, workspace_id, monkeypatch):
    authed.add_peer(workspace_id, "peer-dev", name="Dev")
    authed.proxy_disconnects = 2
    monkeypatch.setenv("DELEGATION_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DELEGATION_RETRY_DELAY", "0.01")

    result = call("delegate_task", "peer-dev", "hello")
    assert result == {"success": True, "workspace_id": "peer-dev", "peer": "Dev", "response": "echo: hello"}
    ids = [r.json["id"] for r in authed.requests_to("/workspaces/peer-dev/a2a")]
    assert [i.rsplit("-", 1)[1] for i in ids] == ["1", "2", "3"]
    assert authed.peer_hits["peer-dev"] == 1


def test_delegate_task_gives_up_after_the_last_dropped_connection(authed, call, workspace_id, monkeypatch):
    authed.add_peer(workspace_id, "peer-dev", name="Dev")
    authed.proxy_disconnects = 2
    monkeypatch.setenv("DELEGATION_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("DELEGATION_RETRY_DELAY", "0.01")

    result = call("delegate_task", "peer-dev", "hello")
    assert result["success"] is False and result["attempts"] == 2
    assert result["error"].startswith("DELEGATION FAILED to Dev: [A2A_ERROR] RemoteProtocolError")
    assert "[target=peer-dev]" in result["error"]
    assert authed.peer_hits["peer-dev"] == 0


def test_delegate_task_does_not_retry_a_json_rpc_error(authed, call, workspace_id, monkeypatch):
    authed.add_peer(workspace_id, "peer-err", name="Err", mode="rpc_error")
    monkeypatch.setenv("DELEGATION_RETRY_DELAY", "0.01")
    result = call("delegate_task", "peer-err", "hello")
    assert result["success"] is False and result["attempts"] == 1
    assert "[A2A_ERROR] kaput (code=-32603) [target=peer-err]" in result["error"]
    assert authed.peer_hits["peer-err"] == 1


def test_delegate_task_tags_agent_errors(authed, call, workspace_id):
    authed.add_peer(workspace_id, "peer-bad", name="Bad", mode="agent_error")
    result = call("delegate_task", "peer-bad", "hello")
    assert result["success"] is False and "[A2A_ERROR] Agent error: boom" in result["error"]


def test_delegate_task_reports_a_queued_peer(authed, call, workspace_id):
    authed.add_peer(workspace_id, "peer-busy", name="Busy", mode="queued")
    result = call("delegate_task", "peer-busy", "hello")
    assert result["success"] is True and result["status"] == "queued" and result["queue_id"] == "q-1"


def test_delegate_task_reports_a_task_the_proxy_queued(authed, call, workspace_id):
    authed.add_peer(workspace_id, "peer-busy", name="Busy")
    authed.proxy_queued = True
    result = call("delegate_task", "peer-busy", "hello")

    assert result["success"] is True and result["status"] == "queued"
    assert result["message"].startswith("Busy is busy; the task was queued")
    assert result["queue_id"] and result["queue_id"] != "q-1"
    assert authed.peer_hits["peer-busy"] == 0


def test_delegate_task_returns_the_proxy_error_answer(authed, call, workspace_id):
    authed.add_peer(workspace_id, "peer-down", name="Down", mode="http_500")
    result = call("delegate_task", "peer-down", "hello")
    assert result == {
        "success": False, "workspace_id": "peer-down", "attempts": 1,
        "error": "DELEGATION FAILED to Down: [A2A_ERROR] HTTP 500: internal error [target=peer-down]. "
                 + DELEGATION_FAILED_HINT,
    }

    authed.discover_overrides["ghost"] = (200, {"id": "ghost", "url": "http://ghost:8000", "name": "Ghost"})
    result = call("delegate_task", "ghost", "hello")
    assert result["error"].startswith("DELEGATION FAILED to Ghost: [A2A_ERROR] HTTP 404: workspace not found")


def test_delegate_task_discovery_denied_is_an_error_dict(authed, call, workspace_id):
    authed.discover_overrides["stranger"] = (403, {"error": "not authorized to discover this workspace"})
    result = call("delegate_task", "stranger", "hello")
    assert result["success"] is False
    assert "HTTP 403: not authorized to discover this workspace" in result["error"]
    assert authed.requests_to("/workspaces/stranger/a2a") == []


def test_echo_delegate_command_takes_the_proxy_route(authed, make_client, workspace_id, tmp_path, peer_listener):
    """`/delegate <B> hi` sent to an echo agent (what the attacker did) reaches B only through the
    platform proxy; B never sees the agent's token."""
    authed.add_peer(workspace_id, "peer-b", name="B")
    authed.registered["peer-b"]["url"] = peer_listener.url
    config_dir = write_config(tmp_path / "echo-configs")

    async def build():
        adapter = EchoAdapter()
        cfg = AdapterConfig(config_path=str(config_dir), builtin_tools=build_tools(make_client()))
        await adapter.setup(cfg)
        return adapter, await adapter.create_executor(cfg)

    adapter, executor = asyncio.run(build())
    port = free_port()
    cards = CardHolder(build_agent_card(load_config(config_dir, env={}), f"http://127.0.0.1:{port}", []))
    with ThreadServer(build_app(executor, cards, adapter=adapter), port) as echo:
        reply = send03(echo.url, "/delegate peer-b hi")["parts"][0]["text"]

    assert json.loads(reply) == {"success": True, "workspace_id": "peer-b", "peer": "B", "response": "peer: hi"}
    [proxied] = authed.requests_to("/workspaces/peer-b/a2a", "POST")
    assert_auth(proxied, source=True, workspace_id=workspace_id)
    [delivered] = peer_listener.requests
    assert "authorization" not in delivered["headers"] and TOKEN not in json.dumps(delivered)


# ------------------------------------------------------------------------------ async delegation
def test_delegate_task_async_posts_to_platform_with_idempotency_key(authed, call, workspace_id):
    target = "22222222-2222-4222-8222-222222222222"
    result = call("delegate_task_async", target, "review PR 7")

    [req] = authed.requests_to(f"/workspaces/{workspace_id}/delegate", "POST")
    assert_auth(req, source=False, workspace_id=workspace_id)
    key = hashlib.sha256(f"{target}:review PR 7".encode()).hexdigest()[:32]
    assert req.json == {"target_id": target, "task": "review PR 7", "idempotency_key": key}
    delegation_id = authed.delegations[workspace_id][0]["delegation_id"]
    assert result["success"] is True and result["status"] == "delegated"
    assert result["delegation_id"] == delegation_id and result["workspace_id"] == target


def test_check_delegation_status_reads_the_platform_list(authed, call, workspace_id):
    target = "22222222-2222-4222-8222-222222222222"
    delegation_id = call("delegate_task_async", target, "review PR 7")["delegation_id"]

    pending = call("check_delegation_status", delegation_id)
    assert pending["success"] is True and pending["status"] == "pending"

    row = authed.delegations[workspace_id][0]
    row.update(status="completed", response_preview="LGTM")
    done = call("check_delegation_status", delegation_id)
    assert (done["status"], done["response_preview"], done["target_id"]) == ("completed", "LGTM", target)
    [_, req] = authed.requests_to(f"/workspaces/{workspace_id}/delegations")
    assert_auth(req, source=False, workspace_id=workspace_id)

    assert call("check_delegation_status", "nope") == {"success": False, "delegation_id": "nope",
                                                      "status": "not_found"}
    listing = call("check_delegation_status")
    assert listing["count"] == 1 and listing["delegations"][0]["delegation_id"] == delegation_id


def test_self_delegation_error_comes_back_as_dict(authed, call, workspace_id):
    result = call("delegate_task_async", workspace_id, "do it yourself")
    assert result["success"] is False and result["error"] == "HTTP 400: self-delegation not permitted"


# ------------------------------------------------------------------------------ approvals
def test_request_approval_waits_for_the_decision(authed, call, workspace_id, monkeypatch):
    monkeypatch.setenv("APPROVAL_POLL_INTERVAL", "0.02")
    authed.approval_auto_decision = ("approved", "alice", 3)
    result = call("request_approval", "deploy to prod", "release 1.2")

    [post] = authed.requests_to(f"/workspaces/{workspace_id}/approvals", "POST")
    assert post.json == {"action": "deploy to prod", "reason": "release 1.2"}
    assert_auth(post, source=False, workspace_id=workspace_id)
    polls = authed.requests_to(f"/workspaces/{workspace_id}/approvals", "GET")
    assert len(polls) == 3
    approval_id = authed.approvals[workspace_id][0]["id"]
    assert result == {"approved": True, "approval_id": approval_id, "decided_by": "alice"}


def test_request_approval_denied(authed, call, monkeypatch):
    monkeypatch.setenv("APPROVAL_POLL_INTERVAL", "0.02")
    authed.approval_auto_decision = ("denied", "bob", 1)
    result = call("request_approval", "rm -rf /", "cleanup")
    assert result["approved"] is False and result["decided_by"] == "bob"
    assert result["message"] == "Denied by human"


def test_request_approval_times_out_cleanly(authed, call, monkeypatch):
    monkeypatch.setenv("APPROVAL_TIMEOUT", "0.2")
    monkeypatch.setenv("APPROVAL_POLL_INTERVAL", "0.05")
    started = time.monotonic()
    result = call("request_approval", "deploy", "")
    elapsed = time.monotonic() - started

    assert 0.2 <= elapsed < 1.0
    assert result == {"approved": False, "approval_id": result["approval_id"],
                      "error": "Timed out after 0.2s waiting for human decision"}
    assert result["approval_id"]


# ------------------------------------------------------------------------------ activity / user
def test_report_activity_posts_to_the_activity_log(authed, call, workspace_id):
    result = call("report_activity", "task_update", summary="half way there")
    [req] = authed.requests_to(f"/workspaces/{workspace_id}/activity", "POST")
    assert req.json == {"activity_type": "task_update", "summary": "half way there", "status": "ok"}
    assert_auth(req, source=False, workspace_id=workspace_id)
    assert result == {"success": True, "status": "logged"}


def test_report_activity_rejects_unknown_types_locally(authed, call):
    result = call("report_activity", "gossip", summary="x")
    assert result["success"] is False and result["error"].startswith("invalid activity_type")
    assert authed.requests == []


def test_send_message_to_user_notifies(authed, call, workspace_id):
    assert call("send_message_to_user", "done!") == {"success": True, "message": "Message sent to user"}
    [req] = authed.requests_to(f"/workspaces/{workspace_id}/notify", "POST")
    assert req.json == {"message": "done!"}


def test_tool_schemas_describe_every_tool(make_client):
    async def scenario():
        client = make_client()
        tools = build_tools(client)
        await client.aclose()
        return tools

    tools = asyncio.run(scenario())
    schemas = {s["function"]["name"]: s["function"] for s in tool_schemas(tools)}
    assert set(schemas) == set(tools)
    assert schemas["delegate_task"]["parameters"]["required"] == ["workspace_id", "task"]
    assert schemas["commit_memory"]["parameters"]["properties"]["scope"] == {"type": "string"}
    assert schemas["search_memory"]["parameters"]["required"] == []
    assert all(s["description"] for s in schemas.values())


# ------------------------------------------------------------------------------ skill promotion (§6.4)
def test_a_memory_asking_for_promotion_records_a_skill_promotion_activity_and_a_heartbeat(authed, call, workspace_id):
    packet = {"promote_to_skill": True, "title": "Triage flaky CI", "repetition_signal": 3,
              "procedure": ["rerun once", "bisect", "quarantine"]}
    result = call("commit_memory", json.dumps(packet), scope="team")
    assert result["success"] is True
    acts = authed.requests_to(f"/workspaces/{workspace_id}/activity", "POST")
    assert [a.json["activity_type"] for a in acts] == ["memory_write", "skill_promotion"]
    promotion = acts[1]
    assert_auth(promotion, source=False, workspace_id=workspace_id)
    assert promotion.json["method"] == "memory/skill-promotion" and promotion.json["summary"] == "Triage flaky CI"
    assert promotion.json["source_id"] == workspace_id and promotion.json["request_body"] == packet
    assert promotion.json["metadata"] == {"source": "memory-curation", "scope": "TEAM", "memory_id": result["id"],
                                          "promote_to_skill": True, "repetition_signal": 3, "memory_packet": packet}
    [beat] = authed.requests_to("/registry/heartbeat", "POST")
    assert beat.json["current_task"] == "Skill promotion: Triage flaky CI" and beat.json["active_tasks"] == 1


@pytest.mark.parametrize("content", ["plain text", '{"promote_to_skill": false}', "{not json", '["promote_to_skill"]'])
def test_other_memories_are_no_promotion_signal(authed, call, workspace_id, content):
    call("commit_memory", content)
    acts = authed.requests_to(f"/workspaces/{workspace_id}/activity", "POST")
    assert [a.json["activity_type"] for a in acts] == ["memory_write"]
