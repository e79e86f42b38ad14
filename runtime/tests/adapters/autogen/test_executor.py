"""AutoGenExecutor over real HTTP: A2A server → AutoGen AssistantAgent → real OpenAIChatCompletionClient
(the `openai` SDK underneath) → fake chat-completions server, with the real built-in tools calling
the fake platform."""

import asyncio
import json
import threading
import time

import pytest

from molecule_runtime.platform import PlatformClient
from molecule_runtime.tools import build_tools, tool_schemas

from ...a2a_helpers import msg03, rpc, rpc_stream, send03
from ...fake_openai import answer_with_tool_result

def test_plain_message_gets_the_model_answer(autogen_runtime):
    rt = autogen_runtime()
    rt.llm.script = [{"content": "Hello from AutoGen."}]
    result = send03(rt.url, "hi there")
    assert result["parts"][0]["text"] == "Hello from AutoGen."
    assert "tool_trace" not in (result.get("metadata") or {})
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4.1-mini"  # "openai:" prefix stripped
    assert call.body["stream"] is True  # model_client_stream
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    system, user = call.messages
    assert system["role"] == "system" and system["content"] == rt.adapter.system_prompt
    assert system["content"].startswith("You are a helpful test agent.") and "commit_memory" in system["content"]
    assert user == {"role": "user", "content": "hi there"}  # no AutoGen `name` field
    # the tools carry the same JSON schemas the openai/langgraph adapters send
    sent = {t["function"]["name"]: t["function"] for t in call.body["tools"]}
    for schema in tool_schemas(rt.executor.tools):
        fn = schema["function"]
        assert sent[fn["name"]]["parameters"] == fn["parameters"]
        assert sent[fn["name"]]["description"] == fn["description"]
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(sent)
    assert sent["commit_memory"]["parameters"]["required"] == ["content"]


@pytest.mark.parametrize("stream", [True, False])
def test_commit_memory_reaches_the_platform_and_the_result_goes_back(autogen_runtime, workspace_id, stream):
    rt = autogen_runtime(f"{{stream: {str(stream).lower()}}}")
    rt.llm.script = [
        {"tool_calls": [{"id": "call_ag_1", "name": "commit_memory",
                         "arguments": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = send03(rt.url, "Remember that the launch is on Friday, for the team")
    text = result["parts"][0]["text"]

    [req] = rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    first, second = rt.llm.requests
    assert bool(first.body.get("stream")) is stream and bool(second.body.get("stream")) is stream
    assistant, tool_msg = second.messages[-2:]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_ag_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "commit_memory"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {
        "content": "The launch is on Friday", "scope": "team"}
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_ag_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "TEAM"}
    # reflect_on_tool_use: the tool result is turned into an answer by one more model call
    assert text == f"Saved it. Tool result: {tool_msg['content']}"

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory" and memory_id in trace["output_preview"]
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}


def test_delegate_task_goes_through_discovery_and_the_platform_proxy(autogen_runtime, workspace_id):
    rt = autogen_runtime()
    rt.platform.add_peer(workspace_id, "peer-dev", name="Dev")
    rt.llm.script = [
        {"tool_calls": [{"id": "call_del", "name": "delegate_task",
                         "arguments": {"workspace_id": "peer-dev", "task": "write the tests"}}]},
        answer_with_tool_result("Dev says: {result}"),
    ]
    result = send03(rt.url, "get Dev to write the tests")

    [disc] = rt.platform.requests_to("/registry/discover/peer-dev")
    assert disc.headers["x-workspace-id"] == workspace_id
    [proxied] = rt.platform.requests_to("/workspaces/peer-dev/a2a", "POST")
    assert proxied.json["params"]["message"]["parts"] == [{"kind": "text", "text": "write the tests"}]
    assert rt.platform.peer_hits["peer-dev"] == 1
    tool_result = json.loads(rt.llm.requests[1].messages[-1]["content"])
    assert tool_result == {"success": True, "workspace_id": "peer-dev", "peer": "Dev",
                           "response": "echo: write the tests"}
    assert result["parts"][0]["text"] == f"Dev says: {rt.llm.requests[1].messages[-1]['content']}"


def test_a_peer_delegating_to_the_autogen_agent_gets_the_reply_text(autogen_runtime, workspace_id, tmp_path):
    """A PM's delegate_task → the platform's A2A proxy → this runtime (streaming on): the PM reads the
    reply text once, as the A2A result, not the streamed artifact chunks as well."""
    rt = autogen_runtime()
    answer = "Here is the draft: a short paragraph about the launch."
    rt.llm.script = [{"content": answer}]
    pm_ws, pm_token = "22222222-2222-4222-8222-222222222222", "pm-token"
    pm_dir = tmp_path / "pm"
    pm_dir.mkdir()
    (pm_dir / ".auth_token").write_text(pm_token)
    rt.platform.tokens[pm_ws] = {pm_token}
    rt.platform.registered[workspace_id] = {"url": rt.url, "agent_card": {"name": "Writer"}}
    rt.platform.workspaces[workspace_id] = {"id": workspace_id, "name": "Writer", "status": "online"}

    async def delegate():
        pm = PlatformClient(platform_url=rt.platform.base_url, workspace_id=pm_ws, config_dir=pm_dir, timeout=10.0)
        return await build_tools(pm)["delegate_task"](workspace_id=workspace_id, task="write the launch paragraph")

    out = asyncio.run(delegate())
    assert out == {"success": True, "workspace_id": workspace_id, "peer": "Writer", "response": answer}
    [call] = rt.llm.requests
    assert call.messages[-1] == {"role": "user", "content": "write the launch paragraph"}


def test_history_goes_into_the_model_context_in_order(autogen_runtime):
    rt = autogen_runtime()
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": [{"kind": "text", "text": "I like tea"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Noted"}]}]
    send03(rt.url, "what is my name?", metadata={"history": history})
    assert rt.llm.requests[0].messages[1:] == [
        {"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "I like tea"}, {"role": "assistant", "content": "Noted"},
        {"role": "user", "content": "what is my name?"}]
    # one agent per request: the next task starts from its own history only
    send03(rt.url, "fresh start")
    assert rt.llm.requests[1].messages[1:] == [{"role": "user", "content": "fresh start"}]


def test_model_mistakes_are_fed_back_not_fatal(autogen_runtime):
    rt = autogen_runtime("{max_tool_rounds: 3}")
    rt.llm.script = [
        {"tool_calls": [{"id": "c1", "name": "no_such_tool", "arguments": {}},
                        {"id": "c2", "name": "commit_memory", "arguments": {"scope": "LOCAL"}}]},
        {"content": "recovered"},
    ]
    result = send03(rt.url, "try tools")
    assert result["parts"][0]["text"] == "recovered"
    tool_msgs = {m["tool_call_id"]: m["content"] for m in rt.llm.requests[1].messages if m["role"] == "tool"}
    assert "no_such_tool" in tool_msgs["c1"] and "not found" in tool_msgs["c1"]
    assert "bad arguments for commit_memory" in json.loads(tool_msgs["c2"])["error"]
    assert rt.platform.memories == []


def test_provider_500_is_an_agent_error_counted_by_the_heartbeat(autogen_runtime):
    rt = autogen_runtime("{max_retries: 0}")
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    result = send03(rt.url, "hello")
    text = result["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "upstream exploded" in text
    assert "sk-test-fake-key-0001" not in text
    assert rt.state.error_rate == 1.0 and "upstream exploded" in rt.state.payload("ws")["sample_error"]
    assert rt.state.active_tasks == 0 and rt.state.current_task == ""
    assert rt.pushes == [(1, "hello"), (0, "")]
    assert len(rt.llm.requests) == 1  # max_retries: 0 reaches the SDK
    rt.llm.script = [{"content": "fine now"}]
    assert send03(rt.url, "again")["parts"][0]["text"] == "fine now"
    assert rt.state.error_rate == 0.5


def test_tool_rounds_are_capped_by_max_tool_rounds(autogen_runtime):
    rt = autogen_runtime("{max_tool_rounds: 2}")
    rt.llm.default = {"tool_calls": [{"name": "search_memory", "arguments": {"query": "x"}}]}
    text = send03(rt.url, "loop forever")["parts"][0]["text"]
    assert text == "Agent error: no final answer after 2 tool rounds (runtime_config.max_tool_rounds)"
    # two rounds with tools, then AutoGen's reflection call, which offers the model no tools
    assert len(rt.llm.requests) == 3
    assert [bool(r.body.get("tools")) for r in rt.llm.requests] == [True, True, False]
    rt.llm.default = {"content": "fake answer"}
    rt.llm.requests.clear()
    rt.llm.script = [{"tool_calls": [{"name": "search_memory", "arguments": {"query": "x"}}]},
                     {"tool_calls": [{"name": "search_memory", "arguments": {"query": "y"}}]},
                     {"content": "answered without tools after two rounds"}]
    assert send03(rt.url, "two rounds")["parts"][0]["text"] == "answered without tools after two rounds"


def test_stream_sends_model_deltas_as_artifact_chunks(autogen_runtime):
    rt = autogen_runtime()
    answer = "A streamed answer that spans several deltas."
    rt.llm.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")})]
    assert events[0]["kind"] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3  # one per SSE delta
    assert [c["append"] for c in chunks] == [False] + [True] * (len(chunks) - 1)
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    assert events[-2]["status"]["state"] == "completed"
    assert events[-1]["kind"] == "message" and events[-1]["parts"][0]["text"] == answer


def test_each_model_call_streams_into_its_own_artifact(autogen_runtime):
    rt = autogen_runtime()
    rt.llm.script = [
        {"content": "Let me save that.", "tool_calls": [{"name": "commit_memory", "arguments": {"content": "x"}}]},
        {"content": "Saved, all done."},
    ]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("save x")})]
    by_artifact: dict[str, str] = {}
    for e in (e for e in events if e["kind"] == "artifact-update"):
        by_artifact[e["artifact"]["artifactId"]] = by_artifact.get(e["artifact"]["artifactId"], "") + \
            e["artifact"]["parts"][0]["text"]
    assert list(by_artifact.values()) == ["Let me save that.", "Saved, all done."]
    assert events[-1]["parts"][0]["text"] == "Saved, all done."


def test_a_model_name_autogen_does_not_know_gets_model_info(autogen_runtime):
    rt = autogen_runtime(model="ollama:llama3.1:8b")  # OPENAI_BASE_URL (the fake) wins over Ollama's URL
    rt.llm.script = [{"tool_calls": [{"name": "search_memory", "arguments": {"query": "tea"}}]},
                     {"content": "nothing about tea"}]
    assert send03(rt.url, "what about tea?")["parts"][0]["text"] == "nothing about tea"
    assert [r.body["model"] for r in rt.llm.requests] == ["llama3.1:8b", "llama3.1:8b"]
    assert "search_memory" in rt.llm.requests[0].tool_names  # function calling is on
    assert rt.executor._client.model_info == {"vision": False, "function_calling": True, "json_output": False,
                                              "structured_output": False, "family": "unknown"}


def test_tasks_cancel_stops_a_slow_model_call(autogen_runtime):
    rt = autogen_runtime()
    rt.llm.script = [{"content": "too late", "delay": 0.9}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=10)))
    sender.start()
    deadline = time.monotonic() + 10
    while not (rt.llm.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    [token] = list(rt.executor._tokens.values())
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=10)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    assert token.is_cancelled()  # AutoGen's CancellationToken was used
    deadline = time.monotonic() + 5
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rt.executor._running == {} and rt.executor._tokens == {}
    assert rt.state.active_tasks == 0 and rt.state.error_rate == 0.0  # a cancel is not an agent error
    rt.llm.script = [{"content": "next one"}]
    assert send03(rt.url, "still there?")["parts"][0]["text"] == "next one"


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole `molecule-runtime` process with runtime: autogen."""
    from ...conftest import free_port, write_config
    from ..conftest import process_env, runtime_process

    ws = "55555555-5555-4555-8555-555555555555"
    configs = write_config(tmp_path / "configs", "name: AutoGen Worker\nruntime: autogen\nmodel: openai:gpt-4.1-mini\n")
    (configs / "system-prompt.md").write_text("You are the autogen worker.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_p1", "name": "commit_memory", "arguments": {"content": "process fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30")
    with runtime_process(env, fake_platform, ws) as url:
        result = send03(url, "remember the process fact")
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert fake_openai.requests[0].messages[0]["content"].startswith("You are the autogen worker.")
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-process-key"
