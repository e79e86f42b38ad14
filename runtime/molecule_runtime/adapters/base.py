"""The adapter interface (spec/runtime.md §3.1).

An adapter package exports `Adapter = <BaseAdapter subclass>`. Constructors must be cheap and
free of side effects (the heartbeat may instantiate the class to read capabilities).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from a2a.server.agent_execution import AgentExecutor

from ..autonomy import snapshot_prompt_section

SNAPSHOT_TRANSCRIPT_MAX = 200


@dataclass(frozen=True)
class RuntimeCapabilities:
    """What the adapter does natively (all False: the runtime provides it)."""

    provides_native_heartbeat: bool = False
    provides_native_scheduler: bool = False
    provides_native_session: bool = False
    provides_native_status_mgmt: bool = False
    provides_native_retry: bool = False
    provides_activity_decoration: bool = False
    provides_channel_dispatch: bool = False

    def to_dict(self) -> dict[str, bool]:
        return {
            "heartbeat": self.provides_native_heartbeat,
            "scheduler": self.provides_native_scheduler,
            "session": self.provides_native_session,
            "status_mgmt": self.provides_native_status_mgmt,
            "retry": self.provides_native_retry,
            "activity_decoration": self.provides_activity_decoration,
            "channel_dispatch": self.provides_channel_dispatch,
        }


@dataclass(frozen=True)
class AdapterCheck:
    """A preflight problem an adapter reports (`BaseAdapter.preflight_checks`).

    Preflight turns each one into a failure; `demote_in_smoke` ones (missing keys or endpoints,
    like `required_env`) become warnings under smoke mode. A missing dependency never is.
    """

    title: str
    detail: str
    fix: str = ""
    demote_in_smoke: bool = False


@dataclass
class AdapterConfig:
    """What `setup` and `create_executor` receive (spec §3.1; `tools` carries skill names)."""

    model: str = ""
    system_prompt: str | None = None
    tools: list[str] = field(default_factory=list)
    runtime_config: dict[str, Any] = field(default_factory=dict)
    config_path: str | Path = "/configs"
    workspace_id: str = ""
    prompt_files: list[str] = field(default_factory=list)
    a2a_port: int = 8000
    # HeartbeatState-like object: task_started(brief), task_finished(ok, error), mark_wedged(reason)
    heartbeat: Any = None
    # optional async callable pushing a heartbeat now (HeartbeatLoop.beat_now)
    beat_now: Callable[[], Awaitable[None]] | None = None
    # built-in tools (molecule_runtime.tools.build_tools(client)): name -> async callable
    builtin_tools: dict[str, Callable[..., Any]] = field(default_factory=dict)
    smoke_mode: bool = False
    # PlatformClient (None in smoke mode / tests): coordinator detection and parent context (§8.1)
    platform: Any = None


class BaseAdapter(abc.ABC):
    """Base class for runtime adapters."""

    loaded_skills: list = []
    all_tools: dict[str, Callable[..., Any]] = {}
    system_prompt: str = ""

    @staticmethod
    @abc.abstractmethod
    def name() -> str: ...

    @staticmethod
    @abc.abstractmethod
    def display_name() -> str: ...

    @staticmethod
    @abc.abstractmethod
    def description() -> str: ...

    @abc.abstractmethod
    async def setup(self, config: AdapterConfig) -> None:
        """One-time preparation. Raise RuntimeError on a bad config or missing deps."""

    @abc.abstractmethod
    async def create_executor(self, config: AdapterConfig) -> AgentExecutor:
        """Return the A2A AgentExecutor (and store it as self._executor)."""

    # ---- optional, with defaults ----
    def get_config_schema(self) -> dict:
        return {}

    def preflight_checks(self, config: Any, env: Any) -> list[AdapterCheck]:
        """Adapter-specific preflight (missing dependency, API key, endpoint). `config` is the
        loaded WorkspaceConfig, `env` the environment mapping. Must not do network I/O."""
        return []

    def capabilities(self) -> RuntimeCapabilities:
        return RuntimeCapabilities()

    def idle_timeout_override(self) -> int | None:
        return None

    def memory_filename(self) -> str:
        return "CLAUDE.md"

    def register_tool_hook(self, name: str, fn: Callable) -> None:
        return None

    def register_subagent_hook(self, name: str, spec: Any) -> None:
        return None

    def append_to_memory_hook(self, config: AdapterConfig, filename: str, content: str) -> None:
        target = Path(config.config_path) / filename
        marker = content.splitlines()[0] if content else ""
        existing = target.read_text(encoding="utf-8") if target.exists() else ""
        if marker and marker in existing:
            return
        with target.open("a", encoding="utf-8") as fh:
            fh.write(("\n" if existing and not existing.endswith("\n") else "") + content)

    async def transcript_lines(self, since: int = 0, limit: int = 100) -> dict:
        return {"runtime": self.name(), "supported": False, "lines": [], "cursor": since,
                "more": False, "source": None}

    def pre_stop_state(self) -> dict:
        """What the pre-stop snapshot keeps of this adapter (runtime.md §2.6): the executor's
        ``_session_id`` and up to 200 transcript lines of a :class:`TranscriptMixin` adapter."""
        state: dict[str, Any] = {}
        session_id = getattr(getattr(self, "_executor", None), "_session_id", None)
        if session_id:
            state["session_id"] = str(session_id)
        if isinstance(self, TranscriptMixin):
            state["transcript"] = [dict(entry) for entry in self._transcript()[-SNAPSHOT_TRANSCRIPT_MAX:]]
        return state

    async def aclose(self) -> None:
        """Stop what setup started (openclaw's gateway); called once when the runtime stops."""
        return None

    def restore_state(self, snapshot: dict) -> None:
        """Take back the previous session's snapshot at boot: kept as ``_snapshot_session_id`` /
        ``_snapshot_transcript``, its transcript put before this session's, and a short account of
        it appended to ``system_prompt`` (executors that read the prompt per turn see it)."""
        adapter_state = snapshot.get("adapter") if isinstance(snapshot.get("adapter"), dict) else {}
        self._snapshot_session_id = snapshot.get("session_id") or adapter_state.get("session_id")
        transcript = adapter_state.get("transcript")
        self._snapshot_transcript = [e for e in transcript if isinstance(e, dict)] if isinstance(transcript, list) else []
        if isinstance(self, TranscriptMixin) and self._snapshot_transcript:
            self._transcript()[:0] = self._snapshot_transcript
        section = snapshot_prompt_section(snapshot)
        self.system_prompt = f"{self.system_prompt}\n\n{section}" if self.system_prompt else section


class TranscriptMixin:
    """In-memory transcript of `{role, text, ts}` entries (used by the echo adapter)."""

    def _transcript(self) -> list[dict]:
        if not hasattr(self, "_transcript_entries"):
            self._transcript_entries = []
        return self._transcript_entries

    def record(self, role: str, text: str) -> None:
        self._transcript().append({"role": role, "text": text, "ts": time.time()})


async def finish_task(updater, *, reply: str, ok: bool, trace: list, transcript=None,
                      files: list | None = None) -> None:
    """Record the reply and end the task. a2a-sdk 1.x forbids a bare Message after task events,
    so the final agent Message rides on the terminal status; the server flattens it back to a
    Message result for 0.3 ``message/send``. ``files`` are FileParts sent after the text. Its
    metadata carries ``tool_trace`` and, when the model calls reported any, ``usage``
    (``{input_tokens, output_tokens, model}``, telemetry.current_usage)."""
    from a2a.types import Part

    from .. import telemetry

    if transcript:
        transcript("agent", reply)
    metadata: dict[str, Any] = {}
    if trace:
        metadata["tool_trace"] = trace
    usage = telemetry.current_usage()
    if usage:  # summed over the task's model calls; the platform meters `result.metadata.usage`
        metadata["usage"] = usage
    if not ok:
        telemetry.task_failed(reply)
    final = updater.new_agent_message([Part(text=reply), *(files or [])], metadata=metadata or None)
    if ok:
        await updater.complete(final)
    else:
        await updater.failed(final)
