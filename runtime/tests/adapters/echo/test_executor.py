"""EchoExecutor commands (spec/runtime.md §11), driven over real HTTP through the A2A server."""

import asyncio
import json
import threading
import time

import pytest

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter, EchoExecutor
from molecule_runtime.adapters.echo.executor import NO_TEXT
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import load_config
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import build_tools

from ...a2a_helpers import msg03, rpc, rpc_stream, send03
from ...conftest import ThreadServer, free_port, write_config


def test_adapter_identity_and_defaults():
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name(), adapter.description()) == \
        ("echo", "Echo", "Deterministic test adapter")
    assert not any(adapter.capabilities().to_dict().values())
    assert adapter.idle_timeout_override() is None
    assert adapter.get_config_schema() == {"reply_prefix": {"type": "string", "default": "echo: "},
                                           "peer_wait_seconds": {"type": "number", "default": 0}}


def test_plain_reply_is_prefix_plus_text(echo_runtime):
    result = send03(echo_runtime.url, "hello world")
    assert result["kind"] == "message" and result["role"] == "agent"
    assert result["parts"][0] == {"kind": "text", "text": "echo: hello world"}
    assert result["taskId"] and result["contextId"]


def test_reply_counts_history(echo_runtime):
    history = [{"role": "user", "parts": [{"kind": "text", "text": "a"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "b"}]}]
    result = send03(echo_runtime.url, "next", metadata={"history": history})
    assert result["parts"][0]["text"] == "[h=2] echo: next"


def test_empty_text_gives_the_exact_error(echo_runtime):
    out = rpc(echo_runtime.url, "message/send",
              {"message": {"role": "user", "messageId": "m-empty", "parts": [{"kind": "text", "text": "   "}]}})
    assert out["result"]["parts"][0]["text"] == NO_TEXT == "Error: message contained no text content."


def test_tool_command_calls_the_tool_and_records_tool_trace(echo_runtime):
    result = send03(echo_runtime.url, '/tool add {"a": 2, "b": 3}')
    assert json.loads(result["parts"][0]["text"]) == {"sum": 5}
    assert result["metadata"]["tool_trace"] == [
        {"tool": "add", "input": '{"a": 2, "b": 3}', "output_preview": '{"sum": 5}'}]


def test_remember_shorthand_calls_commit_memory(echo_runtime):
    result = send03(echo_runtime.url, "/remember the sky is blue")
    assert json.loads(result["parts"][0]["text"])["content"] == "the sky is blue"
    assert result["metadata"]["tool_trace"][0]["tool"] == "commit_memory"


def test_unknown_tool_and_bad_json_are_agent_errors(echo_runtime):
    text = send03(echo_runtime.url, "/tool nope {}")["parts"][0]["text"]
    assert text.startswith("Agent error: unknown tool 'nope'")
    text = send03(echo_runtime.url, "/tool add {not json")["parts"][0]["text"]
    assert text.startswith("Agent error: /tool add: arguments are not valid JSON")


def test_fail_replies_agent_error_and_feeds_error_rate(echo_runtime):
    result = send03(echo_runtime.url, "/fail")
    assert result["parts"][0]["text"] == "Agent error: echo /fail requested"
    state = echo_runtime.state
    assert state.error_rate == 1.0 and state.active_tasks == 0
    send03(echo_runtime.url, "ok")
    assert state.error_rate == 0.5


def test_wedge_marks_the_heartbeat_state(echo_runtime):
    result = send03(echo_runtime.url, "/wedge token expired")
    assert result["parts"][0]["text"] == "wedged: token expired"
    assert echo_runtime.state.is_wedged()
    assert echo_runtime.state.payload("ws")["runtime_state"] == "wedged"


def test_sleep_replies_after_the_delay_and_tracks_current_task(echo_runtime):
    seen = {}

    def probe():
        time.sleep(0.15)
        seen["active"] = echo_runtime.state.active_tasks
        seen["current"] = echo_runtime.state.current_task

    t = threading.Thread(target=probe)
    t.start()
    started = time.monotonic()
    result = send03(echo_runtime.url, "/sleep 0.4")
    t.join()
    assert result["parts"][0]["text"] == "slept 0.4s"
    assert time.monotonic() - started >= 0.4
    assert seen == {"active": 1, "current": "/sleep 0.4"}
    assert echo_runtime.state.active_tasks == 0 and echo_runtime.state.current_task == ""


def test_stream_emits_working_then_chunks_then_final_message(echo_runtime):
    text = "x" * 70
    events = [e["result"] for e in rpc_stream(echo_runtime.url, "message/stream", {"message": msg03(text)})]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) == 3  # 76 chars in 32-char pieces
    assert [c["append"] for c in chunks] == [False, True, True]
    assert all(c["lastChunk"] is False for c in chunks)
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == "echo: " + text
    final_status, final_message = events[-2], events[-1]
    assert final_status["kind"] == "status-update" and final_status["final"] is True
    assert final_status["status"]["state"] == "completed"
    assert final_status["status"]["message"]["parts"][0]["text"] == "echo: " + text
    # the 0.3 contract ends the stream with the final Message itself
    assert final_message["kind"] == "message" and final_message["role"] == "agent"
    assert final_message["parts"][0]["text"] == "echo: " + text
    assert final_message["taskId"] == final_status["taskId"]


def test_transcript_is_kept_in_memory(echo_runtime):
    send03(echo_runtime.url, "one")
    import asyncio

    out = asyncio.run(echo_runtime.adapter.transcript_lines(0, 10))
    assert out["supported"] is True
    assert [(line["role"], line["text"]) for line in out["lines"]] == [("user", "one"), ("agent", "echo: one")]


def test_custom_prefix_from_runtime_config(tmp_path):
    import asyncio

    from molecule_runtime.adapters.base import AdapterConfig

    adapter = Adapter()
    cfg = AdapterConfig(config_path=str(tmp_path), runtime_config={"reply_prefix": ">> "})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, EchoExecutor) and executor.prefix == ">> "
    assert adapter._executor is executor


# ------------------------------------------------------------------ /delegate by a peer's name
# The runtime's real tools (list_peers, delegate_task) against the fake platform, over real HTTP.

TOKEN = "echo-delegate-token"
DEV_LEAD = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def team_echo(fake_platform, config_dir, workspace_id, make_client, tmp_path):
    """start(**runtime_config) serves an echo agent whose tools talk to the fake platform."""
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}
    servers = []

    def start(**runtime_config):
        echo_dir = write_config(tmp_path / f"echo-configs-{len(servers)}")

        async def build():
            adapter = Adapter()
            cfg = AdapterConfig(config_path=str(echo_dir), builtin_tools=build_tools(make_client()),
                                runtime_config=runtime_config)
            await adapter.setup(cfg)
            return adapter, await adapter.create_executor(cfg)

        adapter, executor = asyncio.run(build())
        port = free_port()
        cards = CardHolder(build_agent_card(load_config(echo_dir, env={}), f"http://127.0.0.1:{port}", []))
        server = ThreadServer(build_app(executor, cards, adapter=adapter), port).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def delegated(fake_platform) -> list[tuple[str, str]]:
    """(target id, task text) of every call that went through the fake platform's proxy."""
    return [(r.path.split("/")[2], r.json["params"]["message"]["parts"][0]["text"])
            for r in fake_platform.requests if r.path.endswith("/a2a") and r.method == "POST"]


def test_delegate_takes_a_peers_name_and_still_takes_its_id(team_echo, fake_platform, workspace_id):
    fake_platform.add_peer(workspace_id, DEV_LEAD, name="Dev Lead")
    echo = team_echo()
    by_name = json.loads(send03(echo.url, "/delegate dev lead plan the release")["parts"][0]["text"])
    assert by_name == {"success": True, "workspace_id": DEV_LEAD, "peer": "Dev Lead",
                       "response": "echo: plan the release"}
    by_id = json.loads(send03(echo.url, f"/delegate {DEV_LEAD} ship it")["parts"][0]["text"])
    assert by_id["workspace_id"] == DEV_LEAD and by_id["response"] == "echo: ship it"
    quoted = json.loads(send03(echo.url, '/delegate "Dev Lead" review')["parts"][0]["text"])
    assert quoted["response"] == "echo: review"
    assert delegated(fake_platform) == [(DEV_LEAD, "plan the release"), (DEV_LEAD, "ship it"), (DEV_LEAD, "review")]


def test_an_id_is_delegated_without_looking_up_the_peers(team_echo, fake_platform, workspace_id):
    """The id form needs no lookup: no list_peers call (nor its span in the task's trace)."""
    fake_platform.add_peer(workspace_id, DEV_LEAD, name="Dev Lead")
    echo = team_echo()
    reply = json.loads(send03(echo.url, f"/delegate {DEV_LEAD} ship it")["parts"][0]["text"])
    assert reply["response"] == "echo: ship it"
    assert [r.path for r in fake_platform.requests if r.path.endswith("/peers")] == []


def test_the_longest_matching_name_wins_and_quotes_pick_the_shorter_one(team_echo, fake_platform, workspace_id):
    fake_platform.add_peer(workspace_id, "peer-qa", name="QA")
    fake_platform.add_peer(workspace_id, "peer-qa-lead", name="QA Lead")
    fake_platform.add_peer(workspace_id, "peer-qar", name="QAR")
    echo = team_echo()
    send03(echo.url, "/delegate QA Lead sign off the release")
    send03(echo.url, "/delegate QA lead the test plan".replace("QA lead", '"QA" lead'))
    send03(echo.url, "/delegate qa run the suite")  # "QAR" does not match "qa run": words, not letters
    assert delegated(fake_platform) == [("peer-qa-lead", "sign off the release"), ("peer-qa", "lead the test plan"),
                                        ("peer-qa", "run the suite")]


@pytest.mark.parametrize("text, error", [
    ("/delegate Nobody do it", "Agent error: /delegate: no peer matches 'Nobody do it': give a peer's name or id "
                                   "(peers: Dev Lead, Writer, Writer)"),
    ("/delegate Writer draft it", "Agent error: /delegate: 2 peers are named 'Writer' (peer-w1, peer-w2); use the id"),
    ('/delegate "Nobody" do it', "Agent error: /delegate: no peer matches 'Nobody': give a peer's name or id "
                                 "(peers: Dev Lead, Writer, Writer)"),
    ('/delegate "Dev Lead', "Agent error: /delegate: unterminated quote in '\"Dev Lead'"),
    ("/delegate Dev Lead", "Agent error: /delegate: no task given for 'Dev Lead'"),
    ("/delegate", "Agent error: usage: /delegate <peer name or workspace id> <task>"),
])
def test_no_or_several_matching_peers_is_a_clear_error_and_nothing_is_sent(
        team_echo, fake_platform, workspace_id, text, error):
    fake_platform.add_peer(workspace_id, DEV_LEAD, name="Dev Lead")
    fake_platform.add_peer(workspace_id, "peer-w1", name="Writer")
    fake_platform.add_peer(workspace_id, "peer-w2", name="Writer")
    echo = team_echo()
    assert send03(echo.url, text)["parts"][0]["text"] == error
    assert delegated(fake_platform) == []


def test_without_a_peer_list_only_an_id_is_accepted(team_echo, fake_platform, workspace_id):
    fake_platform.tokens[workspace_id] = {"another-token"}  # the platform refuses our token: no list_peers
    echo = team_echo()
    text = send03(echo.url, "/delegate Dev Lead plan")["parts"][0]["text"]
    assert text.startswith("Agent error: /delegate: cannot look up peer 'Dev': ")


def test_peer_wait_seconds_waits_for_a_team_member_that_is_still_starting(team_echo, fake_platform, workspace_id):
    """A team lead's initial prompt runs while its team is still being created and started."""
    echo = team_echo(peer_wait_seconds=20)

    def team_arrives():
        time.sleep(1.5)
        fake_platform.add_peer(workspace_id, DEV_LEAD, name="Dev Lead")
        fake_platform.peers[workspace_id][0]["status"] = "provisioning"
        time.sleep(1.5)
        fake_platform.peers[workspace_id][0]["status"] = "online"

    arrival = threading.Thread(target=team_arrives)
    started = time.monotonic()
    arrival.start()
    reply = json.loads(send03(echo.url, "/delegate Dev Lead plan the week")["parts"][0]["text"])
    arrival.join()
    assert reply["success"] is True and reply["workspace_id"] == DEV_LEAD
    assert 2.5 < time.monotonic() - started < 15
    assert delegated(fake_platform) == [(DEV_LEAD, "plan the week")]


def test_peer_wait_seconds_gives_up_with_the_error_after_the_wait(team_echo, fake_platform, workspace_id):
    echo = team_echo(peer_wait_seconds=1.5)
    started = time.monotonic()
    text = send03(echo.url, "/delegate Dev Lead plan")["parts"][0]["text"]
    assert text == "Agent error: /delegate: no peer matches 'Dev Lead plan': give a peer's name or id (peers: none)"
    assert time.monotonic() - started >= 1.5


def test_a_bad_peer_wait_seconds_means_no_wait(tmp_path):
    adapter = Adapter()
    cfg = AdapterConfig(config_path=str(tmp_path), runtime_config={"peer_wait_seconds": "soon"})
    asyncio.run(adapter.setup(cfg))
    assert asyncio.run(adapter.create_executor(cfg)).peer_wait_seconds == 0.0
    cfg = AdapterConfig(config_path=str(tmp_path), runtime_config={"peer_wait_seconds": 90})
    assert asyncio.run(adapter.create_executor(cfg)).peer_wait_seconds == 90.0
