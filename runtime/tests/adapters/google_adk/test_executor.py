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
