"""DeepAgentsExecutor over real HTTP: A2A server → deepagents graph → real ChatOpenAI → fake
chat-completions server; the built-in tools call the fake platform, the filesystem tools write real files."""

import json
import threading
import time

import pytest

from ...a2a_helpers import msg03, rpc, rpc_stream, send03
from ...fake_openai import answer_with_tool_result, last_tool_result

pytest.importorskip("deepagents")

CONFIG = "name: Deep\nruntime: deepagents\nmodel: openai:gpt-4.1-mini\nruntime_config: {max_retries: 0}\n"


def test_a2a_task_answered_with_the_deep_agent_tools_and_our_prompt(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG, prompt="You are the deep test agent.")
    rt.llm.script = [{"content": "Deeply answered."}]
    result = send03(rt.url, "hi deep")
    assert result["parts"][0]["text"] == "Deeply answered."
    [call] = rt.llm.requests
    assert call.body["model"] == "gpt-4.1-mini" and call.body["stream"] is True
    system, user = call.messages[0], call.messages[-1]
    assert system["role"] == "system" and system["content"].startswith("You are the deep test agent.")
    assert user == {"role": "user", "content": "hi deep"}
    assert f"## Your Filesystem\nYour working directory is {rt.executor.root_dir}." in system["content"]
    assert str(rt.config_dir.resolve()) in system["content"]
    # deepagents' built-ins and Molecule's built-ins side by side
    assert {"ls", "read_file", "write_file", "edit_file", "glob", "grep", "task"} <= set(call.tool_names)
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)


def test_commit_memory_reaches_the_platform_and_the_result_goes_back(llm_runtime, workspace_id):
    rt = llm_runtime("deepagents", CONFIG)
    rt.llm.script = [
        {"tool_calls": [{"id": "call_da_1", "name": "commit_memory",
                         "arguments": {"content": "Deploys freeze on Friday", "scope": "LOCAL"}}]},
        answer_with_tool_result("Saved: {result}"),
    ]
    result = send03(rt.url, "remember the deploy freeze")
    [req] = rt.platform.requests_to(f"/workspaces/{workspace_id}/memories", "POST")
    assert req.json == {"content": "Deploys freeze on Friday", "scope": "LOCAL"}
    memory_id = rt.platform.memories[0]["id"]
    second = rt.llm.requests[1]
    tool_msg = second.messages[-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_da_1"
    assert json.loads(tool_msg["content"]) == {"success": True, "id": memory_id, "scope": "LOCAL"}
    assert result["parts"][0]["text"] == f"Saved: {tool_msg['content']}"
    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory" and memory_id in trace["output_preview"]


def test_write_file_lands_under_the_workspace_and_outside_paths_are_refused(llm_runtime, workspace_root, tmp_path):
    rt = llm_runtime("deepagents", CONFIG)
    inside = workspace_root / "notes" / "plan.md"
    outside = tmp_path / "elsewhere" / "stolen.txt"
    rt.llm.script = [
        {"tool_calls": [{"id": "call_w1", "name": "write_file",
                         "arguments": {"file_path": str(inside), "content": "# Plan\n1. ship\n"}}]},
        {"tool_calls": [{"id": "call_w2", "name": "write_file",
                         "arguments": {"file_path": str(outside), "content": "nope"}}]},
        answer_with_tool_result("Last tool said: {result}"),
    ]
    result = send03(rt.url, "write the plan")
    assert inside.read_text() == "# Plan\n1. ship\n"
    assert not outside.exists() and not outside.parent.exists()
    assert str(inside) in last_tool_result(rt.llm.requests[1].body)  # "Updated file <path>"
    refused = last_tool_result(rt.llm.requests[2].body)
    assert "permission denied for write" in refused and str(outside) in refused
    assert [t["tool"] for t in result["metadata"]["tool_trace"]] == ["write_file"] * 2


def test_claude_md_is_the_agents_memory(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG)
    (rt.config_dir / "CLAUDE.md").write_text("The team's codename is HERON.")
    rt.executor._agent = None  # built on the next task, after CLAUDE.md exists
    send03(rt.url, "what is the codename?")
    blocks = rt.llm.requests[0].messages[0]["content"]  # deepagents sends the system prompt as text blocks
    system = blocks if isinstance(blocks, str) else "\n".join(b["text"] for b in blocks)
    assert "The team's codename is HERON." in system and str(rt.config_dir / "CLAUDE.md") in system


def test_history_goes_in_order_and_a_known_context_continues_its_thread(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG)
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]}]
    rt.llm.script = [{"content": "You are Ada."}, {"content": "Still Ada."}]
    rpc(rt.url, "message/send", {"message": msg03("what is my name?", contextId="ctx-deep-1"),
                                 "metadata": {"history": history}})
    assert rt.llm.requests[0].messages[1:] == [
        {"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "Hi Ada"},
        {"role": "user", "content": "what is my name?"}]
    # same context: the checkpointer has the conversation, the history is not sent twice
    rpc(rt.url, "message/send", {"message": msg03("and now?", contextId="ctx-deep-1"),
                                 "metadata": {"history": history}})
    contents = [(m["role"], m.get("content")) for m in rt.llm.requests[1].messages[1:]]
    assert contents == [("user", "my name is Ada"), ("assistant", "Hi Ada"), ("user", "what is my name?"),
                        ("assistant", "You are Ada."), ("user", "and now?")]
    # another context starts a thread of its own
    rt.llm.script = [{"content": "Who?"}]
    send03(rt.url, "who am I?", )
    assert [m["content"] for m in rt.llm.requests[2].messages[1:]] == ["who am I?"]


def test_provider_error_is_an_agent_error(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG)
    rt.llm.script = [{"status": 500, "error": "deep upstream exploded"}]
    text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text.startswith("Agent error: ") and "deep upstream exploded" in text
    assert rt.state.error_rate == 1.0 and rt.state.active_tasks == 0


def test_stream_sends_model_deltas_as_artifact_chunks(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG)
    answer = "A deep streamed answer across several deltas."
    rt.llm.script = [{"content": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream")}, timeout=30)]
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3 and "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    assert events[-1]["kind"] == "message" and events[-1]["parts"][0]["text"] == answer


def test_tasks_cancel_stops_a_slow_model_call(llm_runtime):
    rt = llm_runtime("deepagents", CONFIG)
    rt.llm.script = [{"content": "too late", "delay": 1.5}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=30)))
    sender.start()
    deadline = time.monotonic() + 20
    while not (rt.llm.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=30)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 5
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rt.executor._running == {} and rt.state.error_rate == 0.0
