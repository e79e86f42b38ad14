"""CrewAIExecutor over real HTTP: A2A server → crewAI Agent/Task/Crew → crewAI's native OpenAI provider
(the real `openai` SDK) → the fake chat-completions server, with the real built-in tools calling the
fake platform from crewAI's worker thread."""

import json
import time

from ...a2a_helpers import msg03, rpc, rpc_stream
from ...fake_openai import answer_with_tool_result
from .conftest import A2A_TIMEOUT, cancel_during_a_slow_model_answer

WS_MEMORIES = "/workspaces/{ws}/memories"


def send(url: str, text: str, **params) -> dict:
    out = rpc(url, "message/send", {"message": msg03(text), **params}, timeout=A2A_TIMEOUT)
    assert "result" in out, out
    return out["result"]


def test_message_send_gets_the_model_answer_with_role_and_backstory_from_the_prompt(crewai_runtime):
    rt = crewai_runtime(prompt="# Research Analyst\nYou dig up facts and cite them.")
    rt.llm.script = [{"content": "Hello from the crew."}]
    result = send(rt.url, "hi there, what is {topic}?")  # braces stay text, not crewAI inputs
    assert result["kind"] == "message" and result["role"] == "agent"
    assert result["parts"][0]["text"] == "Hello from the crew."
    assert "tool_trace" not in (result.get("metadata") or {})

    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4o-mini"  # "openai:" prefix → crewAI's openai/ → the bare name on the wire
    assert call.headers["authorization"] == "Bearer sk-test-fake-key-0001"
    system, user = call.messages
    # crewAI's own framing: "You are {role}. {backstory}\nYour personal goal is: {goal}"
    assert system["role"] == "system"
    assert system["content"].startswith("You are Research Analyst. # Research Analyst\nYou dig up facts and cite them.")
    assert "commit_memory" in system["content"]  # the shared system prompt is the backstory
    assert "Your personal goal is: Answer the current message" in system["content"]
    assert user["role"] == "user"
    assert "Current Task: hi there, what is {topic}?" in user["content"]
    assert "Conversation so far" not in user["content"]

    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)
    schema = next(t for t in call.body["tools"] if t["function"]["name"] == "commit_memory")["function"]
    assert schema["description"].startswith("Save a fact to long-term memory")
    params = schema["parameters"]
    assert params["properties"]["content"]["type"] == "string"
    assert set(params["properties"]) == {"content", "scope"}


def test_commit_memory_reaches_the_platform_and_the_result_goes_back_to_the_model(crewai_runtime, workspace_id):
    rt = crewai_runtime()
    rt.llm.script = [
        {"tool_calls": [{"id": "call_mem_1", "name": "commit_memory",
                         "arguments": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_tool_result("Saved it. Tool result: {result}"),
    ]
    result = send(rt.url, "Remember that the launch is on Friday, for the team")
    text = result["parts"][0]["text"]

    # the tool ran on the runtime's loop with the workspace's platform client
    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    # crewAI sent the tool result back to the model, tied to the call id
    first, second = rt.llm.requests
    assistant, tool_msg = second.messages[-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_mem_1"
    assert assistant["tool_calls"][0]["function"]["name"] == "commit_memory"
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_mem_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "TEAM"}
    assert text == f"Saved it. Tool result: {tool_msg['content']}"

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory"
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]


def test_an_optional_argument_left_out_takes_the_tools_default_and_a_repeat_call_runs_again(crewai_runtime,
                                                                                            workspace_id):
    rt = crewai_runtime()
    call = {"name": "commit_memory", "arguments": {"content": "same fact"}}
    rt.llm.script = [{"tool_calls": [call]}, {"tool_calls": [call]}, {"content": "twice"}]
    assert send(rt.url, "remember it twice")["parts"][0]["text"] == "twice"
    reqs = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert [r.json for r in reqs] == [{"content": "same fact", "scope": "LOCAL"}] * 2  # no crewAI tool cache


def test_history_becomes_a_conversation_prefix_in_order(crewai_runtime):
    rt = crewai_runtime()
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": []}]
    send(rt.url, "what is my name?", metadata={"history": history})
    user = rt.llm.requests[0].messages[-1]["content"]
    assert ("Current Task: Conversation so far:\nUser: my name is Ada\nAssistant: Hi Ada\n\n"
            "Current message:\nwhat is my name?") in user


def test_provider_500_is_an_agent_error_counted_by_the_heartbeat(crewai_runtime):
    rt = crewai_runtime("{max_retries: 0}")
    rt.llm.script = [{"status": 500, "error": "upstream exploded"}]
    text = send(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "upstream exploded" in text
    assert len(rt.llm.requests) == 1  # no crewAI agent-level retry of the task
    assert rt.state.error_rate == 1.0 and "upstream exploded" in rt.state.payload("ws")["sample_error"]
    assert rt.state.active_tasks == 0 and rt.state.current_task == ""
    assert rt.pushes == [(1, "hello"), (0, "")]
    rt.llm.script = [{"content": "fine now"}]
    assert send(rt.url, "again")["parts"][0]["text"] == "fine now"
    assert rt.state.error_rate == 0.5


def test_message_stream_sends_the_reply_as_an_artifact_and_a_final_message(crewai_runtime):
    rt = crewai_runtime()
    rt.llm.script = [{"content": "A streamed crew answer."}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")},
                                              timeout=A2A_TIMEOUT)]
    assert events[0]["kind"] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == "A streamed crew answer."
    final_status, final_message = events[-2], events[-1]
    assert final_status["status"]["state"] == "completed"
    assert final_message["kind"] == "message" and final_message["parts"][0]["text"] == "A streamed crew answer."


def test_tasks_cancel_ends_the_task_at_once_and_the_late_work_is_dropped(crewai_runtime, workspace_id):
    rt = crewai_runtime()
    # the model answers late with a tool call; after the cancel that call must not run and no
    # further model call may be made
    rt.llm.script = [{"tool_calls": [{"id": "c1", "name": "commit_memory", "arguments": {"content": "late"}}],
                      "delay": 2.0}, {"content": "too late"}]
    task_id, out, sent, took = cancel_during_a_slow_model_answer(rt)
    assert took < 1.5  # not after the slow model answer
    assert out["result"]["status"]["state"] == "canceled"
    assert sent["result"]["status"]["state"] == "canceled"
    assert rt.executor._running == {}
    assert rt.state.active_tasks == 0 and rt.state.error_rate == 0.0  # a cancel is not an agent error

    time.sleep(3.0)  # the worker thread gets the late tool call meanwhile
    assert rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST") == []
    assert len(rt.llm.requests) == 1
    got = rpc(rt.url, "tasks/get", {"id": task_id})["result"]
    assert got["status"]["state"] == "canceled"  # the late result changed nothing
