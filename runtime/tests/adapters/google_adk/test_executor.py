"""GoogleADKExecutor over real HTTP: A2A server → real google-adk Runner + google-genai client →
fake Gemini server (tests/fake_gemini.py), with the real built-in tools calling the fake platform."""

import json
import threading
import time

from ...a2a_helpers import msg03, rpc, rpc_stream, send03
from ...fake_gemini import answer_with_function_response, function_responses
from .conftest import GEMINI_KEY

WS_MEMORIES = "/workspaces/{ws}/memories"


def test_plain_message_gets_the_model_answer(adk_runtime):
    rt = adk_runtime()
    rt.gemini.script = [{"text": "Hello from Gemini."}]
    result = send03(rt.url, "hi there")
    assert result["parts"][0]["text"] == "Hello from Gemini."
    assert "tool_trace" not in (result.get("metadata") or {})
    [call] = rt.gemini.requests
    assert call.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"  # "google_genai:" stripped
    assert call.query == {"alt": "sse"}
    assert call.headers["x-goog-api-key"] == GEMINI_KEY
    assert call.texts() == [("user", "hi there")]
    assert call.system_text.startswith("You are a helpful test agent.")
    assert "commit_memory" in call.system_text
    assert call.body["generationConfig"] == {"temperature": 1.0, "maxOutputTokens": 8192}
    assert {"commit_memory", "search_memory", "delegate_task", "list_peers"} <= set(call.tool_names)
    decl = next(d for d in call.function_declarations if d["name"] == "commit_memory")
    schema = decl.get("parametersJsonSchema") or decl.get("parameters_json_schema")
    assert schema["required"] == ["content"] and schema["properties"]["scope"] == {"type": "string"}
    assert rt.llm.requests == []  # nothing went to the OpenAI-compatible fake


def _tool_call_flow(rt, workspace_id):
    rt.gemini.script = [
        {"function_calls": [{"id": "fc-mem-1", "name": "commit_memory",
                             "args": {"content": "The launch is on Friday", "scope": "team"}}]},
        answer_with_function_response("Saved it. Tool result: {result}"),
    ]
    result = send03(rt.url, "Remember that the launch is on Friday, for the team")
    text = result["parts"][0]["text"]

    # the tool's request reached the platform, authenticated as the workspace
    [req] = rt.platform.requests_to(WS_MEMORIES.format(ws=workspace_id), "POST")
    assert req.json == {"content": "The launch is on Friday", "scope": "TEAM"}
    assert req.headers["authorization"] == "Bearer adapter-test-token"
    memory_id = rt.platform.memories[0]["id"]

    # the next Gemini request carries the model's functionCall and our functionResponse, tied by id
    first, second = rt.gemini.requests
    call_turn, response_turn = second.contents[-2:]
    assert call_turn["role"] == "model"
    assert call_turn["parts"][0]["functionCall"] == {
        "id": "fc-mem-1", "name": "commit_memory", "args": {"content": "The launch is on Friday", "scope": "team"}}
    assert response_turn["role"] == "user"
    [fr] = function_responses(second.body)
    assert fr["id"] == "fc-mem-1" and fr["name"] == "commit_memory"
    assert fr["response"] == {"success": True, "id": memory_id, "scope": "TEAM"}
    assert text == f"Saved it. Tool result: {json.dumps(fr['response'])}"
    assert memory_id in text

    [trace] = result["metadata"]["tool_trace"]
    assert trace["tool"] == "commit_memory"
    assert json.loads(trace["input"]) == {"content": "The launch is on Friday", "scope": "team"}
    assert memory_id in trace["output_preview"]
    return first, second


def test_function_call_reaches_the_platform_and_the_response_goes_back_streaming(adk_runtime, workspace_id):
    rt = adk_runtime()
    first, second = _tool_call_flow(rt, workspace_id)
    assert first.stream and second.stream


def test_function_call_without_streaming(adk_runtime, workspace_id):
    rt = adk_runtime("""
        runtime: google-adk
        model: gemini-2.5-pro
        runtime_config: {stream: false, agent_name: ops-agent, temperature: 0.2, max_output_tokens: 512}
    """)
    first, second = _tool_call_flow(rt, workspace_id)
    assert first.path == "/v1beta/models/gemini-2.5-pro:generateContent" and not second.stream
    assert first.body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 512}
    assert 'internal name is "ops_agent"' in first.system_text  # agent_name, made an identifier for ADK


def test_session_continuity_per_context_id(adk_runtime):
    rt = adk_runtime()
    rt.gemini.script = [{"text": "Nice to meet you, Ada."}, {"text": "You are Ada."}, {"text": "I don't know."}]
    first = send03(rt.url, "my name is Ada")
    context = first["contextId"]
    rpc(rt.url, "message/send", {"message": msg03("what is my name?", contextId=context)})
    rpc(rt.url, "message/send", {"message": msg03("what is my name?")})  # a new context
    one, two, three = rt.gemini.requests
    assert one.texts() == [("user", "my name is Ada")]
    assert two.texts() == [("user", "my name is Ada"), ("model", "Nice to meet you, Ada."),
                           ("user", "what is my name?")]
    assert three.texts() == [("user", "what is my name?")]


def test_history_seeds_a_new_session_in_order(adk_runtime):
    rt = adk_runtime()
    history = [{"role": "user", "parts": [{"kind": "text", "text": "my name is Ada"}]},
               {"role": "agent", "parts": [{"kind": "text", "text": "Hi Ada"}]},
               {"role": "user", "parts": []}]
    result = send03(rt.url, "what is my name?", metadata={"history": history})
    assert rt.gemini.requests[0].texts() == [("user", "my name is Ada"), ("model", "Hi Ada"),
                                             ("user", "what is my name?")]
    # the session already holds the conversation: the same history is not added twice
    rpc(rt.url, "message/send", {"message": msg03("and again?", contextId=result["contextId"]),
                                 "metadata": {"history": history}})
    assert rt.gemini.requests[1].texts() == [("user", "my name is Ada"), ("model", "Hi Ada"),
                                             ("user", "what is my name?"), ("model", "fake gemini answer"),
                                             ("user", "and again?")]


def test_model_mistakes_are_fed_back_not_fatal(adk_runtime):
    rt = adk_runtime()
    rt.gemini.script = [
        {"function_calls": [{"id": "c1", "name": "commit_memory", "args": {"scope": "LOCAL"}}]},  # no content
        {"text": "recovered"},
    ]
    result = send03(rt.url, "try tools")
    assert result["parts"][0]["text"] == "recovered"
    [fr] = function_responses(rt.gemini.requests[1].body)
    assert fr["id"] == "c1" and "bad arguments for commit_memory" in fr["response"]["error"]
    assert [t["tool"] for t in result["metadata"]["tool_trace"]] == ["commit_memory"]


def test_provider_error_is_an_agent_error_naming_the_class(adk_runtime, caplog):
    rt = adk_runtime("""
        runtime: google-adk
        model: google_genai:gemini-2.5-flash
        runtime_config: {max_retries: 0}
    """)
    leaked = "AIza" + "SyD3x4mpl3K3yF0rT3st1ngOnlyAbCdEfGh"  # a Google API key shape, echoed by the error
    rt.gemini.script = [{"status": 500, "error": f"upstream exploded for {leaked}"}]
    with caplog.at_level("INFO"):
        text = send03(rt.url, "hello")["parts"][0]["text"]
    assert text == "Agent error: ServerError"  # the class only (spec), no provider message
    assert len(rt.gemini.requests) == 1  # max_retries: 0
    [record] = [r for r in caplog.records if "google-adk run failed" in r.getMessage()]
    assert "ServerError" in record.getMessage() and "upstream exploded" in record.getMessage()
    assert leaked not in record.getMessage() and "[REDACTED" in record.getMessage()  # redacted in the log too
    sdk_records = [r for r in caplog.records if r.name.startswith("google_adk") and r.exc_info]
    assert sdk_records  # ADK logs the failed node with its traceback: redacted as well
    for r in caplog.records:
        assert leaked not in r.getMessage() and leaked not in (r.exc_text or ""), r.name
    assert rt.state.error_rate == 1.0 and rt.state.payload("ws")["sample_error"] == "ServerError"
    assert rt.state.active_tasks == 0 and rt.pushes == [(1, "hello"), (0, "")]
    rt.gemini.script = [{"status": 429, "error": "quota"}]
    assert send03(rt.url, "again")["parts"][0]["text"].startswith("Agent error: ")
    rt.gemini.script = [{"text": "fine now"}]
    assert send03(rt.url, "and again")["parts"][0]["text"] == "fine now"
    assert rt.state.error_rate == 2 / 3


def test_tool_rounds_are_capped(adk_runtime):
    rt = adk_runtime("""
        runtime: google-adk
        model: gemini-2.5-flash
        runtime_config: {max_tool_rounds: 2}
    """)
    rt.gemini.default = {"function_calls": [{"name": "search_memory", "args": {"query": "x"}}]}
    text = send03(rt.url, "loop forever")["parts"][0]["text"]
    assert text == "Agent error: LlmCallsLimitExceededError"
    assert len(rt.gemini.requests) == 3


def test_stream_sends_partial_text_as_artifact_chunks(adk_runtime):
    rt = adk_runtime()
    answer = "A streamed answer that spans several SSE events."
    rt.gemini.script = [{"text": answer}]
    events = [e["result"] for e in rpc_stream(rt.url, "message/stream", {"message": msg03("stream please")})]
    assert events[0]["kind"] == "task"
    assert events[1]["kind"] == "status-update" and events[1]["status"]["state"] == "working"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) > 3  # one per partial event from Gemini's SSE stream
    assert [c["append"] for c in chunks] == [False] + [True] * (len(chunks) - 1)
    assert len({c["artifact"]["artifactId"] for c in chunks}) == 1
    assert "".join(c["artifact"]["parts"][0]["text"] for c in chunks) == answer
    final_status, final_message = events[-2], events[-1]
    assert final_status["status"]["state"] == "completed"
    assert final_message["kind"] == "message" and final_message["parts"][0]["text"] == answer


def test_empty_text_gives_the_exact_error_without_calling_the_model(adk_runtime):
    rt = adk_runtime()
    out = rpc(rt.url, "message/send",
              {"message": {"role": "user", "messageId": "m-empty", "parts": [{"kind": "text", "text": " "}]}})
    assert out["result"]["parts"][0]["text"] == "Error: message contained no text content."
    assert rt.gemini.requests == []


def test_tasks_cancel_stops_a_slow_model_call(adk_runtime):
    rt = adk_runtime()
    rt.gemini.script = [{"text": "too late", "delay": 1.5}]
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=10)))
    sender.start()
    deadline = time.monotonic() + 5
    while not (rt.gemini.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    out = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=10)
    assert out["result"]["status"]["state"] == "canceled"
    assert holder["out"]["result"]["status"]["state"] == "canceled"
    deadline = time.monotonic() + 5
    while (rt.executor._running or rt.state.active_tasks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rt.executor._running == {}
    assert rt.state.active_tasks == 0 and rt.state.error_rate == 0.0  # a cancel is not an agent error
    # the context's session is usable again (its lock was released by the cancel)
    rt.gemini.script = [{"text": "after cancel"}]
    context = holder["out"]["result"]["contextId"]
    out = rpc(rt.url, "message/send", {"message": msg03("next", contextId=context)})
    assert out["result"]["parts"][0]["text"] == "after cancel"
    assert rt.gemini.requests[-1].texts()[0] == ("user", "slow please")  # same ADK session
    assert rt.gemini.requests[-1].texts()[-1] == ("user", "next")


def test_the_system_prompt_reaches_gemini_verbatim_braces_and_all(adk_runtime):
    """ADK would read `{user_name}` in a string instruction as session state (and fail on it)."""
    prompt = 'You answer as JSON like {"ok": true}. Greet {user_name} by name.'
    rt = adk_runtime(prompt=prompt)
    assert send03(rt.url, "hello")["parts"][0]["text"] == "fake gemini answer"
    assert rt.gemini.requests[0].system_text.startswith(prompt)
