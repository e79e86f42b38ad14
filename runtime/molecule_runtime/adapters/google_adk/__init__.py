"""`google-adk`: Google's Agent Development Kit — a `google.adk` `LlmAgent` on Gemini, run by a
`Runner` over an `InMemorySessionService` with one ADK session per A2A context id, the built-in and
skill tools as ADK tools (their JSON schemas declared to Gemini), Gemini's partial text streamed as
A2A artifact chunks. Each model call is a `chat <model>` span under the task's span with its usage,
which is summed onto the reply (a traced subclass of ADK's `Gemini`, telemetry.py).

Model `google_genai:gemini-2.5-flash` or a bare `gemini-…`; key `GOOGLE_API_KEY` (or
`GEMINI_API_KEY`), or `GOOGLE_GENAI_USE_VERTEXAI=1` with `GOOGLE_CLOUD_PROJECT` /
`GOOGLE_CLOUD_LOCATION`; `runtime_config.agent_name`, `max_output_tokens`, `temperature`.
google-adk is imported lazily (extra `molecule-runtime[google-adk]`, in an environment of its
own: it wants websockets<16), so importing this package is free.
"""

from .adapter import GoogleADKAdapter as Adapter
from .executor import GoogleADKExecutor

__all__ = ["Adapter", "GoogleADKExecutor"]
