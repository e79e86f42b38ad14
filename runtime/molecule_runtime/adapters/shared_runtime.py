"""Shared pieces of the LLM adapters (`openai`, `langgraph`): settings, prompt, tools, executor skeleton.

Adapters stay plugin-shaped (one package each, same file set); what they have in common lives
here, like `base.py`: the provider settings (from `providers.py`, re-exported), the system
prompt (spec/runtime.md §3.4, trimmed; plugins §8.2 and coordinator/parent context §8.1 come in
through `WorkspaceExtras`), the tool map (built-in tools + skill tools), calling a
tool for a model, and `LLMExecutor`, the A2A skeleton of spec §3.5 that both executors fill in
with their own `run()`.

Nothing here imports an LLM SDK: the adapters import theirs lazily, so the `echo` runtime works
without them and preflight names a missing package.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
import dataclasses
import importlib.util
import inspect
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Part, TaskState

from ..attachments import ChatFiles, describe
from ..autonomy import snapshot_prompt_section
from ..checkpoints import TaskCheckpoints, activate, deactivate, record_tool_step
from ..tools.redact import redact_secrets
from ..coordinator import fetch_parent_context, find_children, make_route_tool, parent_context_section, team_section
from ..platform import PlatformError
from ..plugins import discover_plugins, fragments_text, load_plugin_skills, rules_text
from ..skills import load_skills
from .base import AdapterCheck, AdapterConfig, BaseAdapter, TranscriptMixin, finish_task
# the provider map (settings) lives in providers.py; re-exported so `from .shared_runtime import …` keeps working
from .providers import (  # noqa: F401
    DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOOL_ROUNDS, PROVIDERS, LLMSettings, Provider, _rc_int, chat_model,
    resolve_llm_settings, settings_problems, split_model)

log = logging.getLogger(__name__)

NO_TEXT = "Error: message contained no text content."
NO_RESPONSE = "(no response generated)"
TRACE_MAX = 200


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def dependency_problem(runtime: str, modules: tuple[str, ...], extra: str) -> AdapterCheck | None:
    missing = missing_modules(modules)
    if not missing:
        return None
    return AdapterCheck("Missing dependency",
                        f"runtime '{runtime}' needs the Python package(s) {', '.join(missing)}, which are not installed",
                        f"pip install 'molecule-runtime[{extra}]'")


def check_adapter_config(runtime: str, model: str, runtime_config: Mapping[str, Any], env: Mapping[str, str],
                         modules: tuple[str, ...], extra: str) -> list[AdapterCheck]:
    """The preflight checks both LLM adapters share: dependency, config values, model/key/URL."""
    checks = []
    dep = dependency_problem(runtime, modules, extra)
    if dep is not None:
        checks.append(dep)
    try:
        settings = resolve_llm_settings(model, runtime_config, env)
    except ValueError as exc:
        checks.append(AdapterCheck("Invalid runtime_config", str(exc)))
        return checks
    return checks + settings_problems(settings, runtime)


# ----------------------------------------------------------------------------- prompt + tools


DELEGATION_RULES = """## Handling delegation failures
1. If a delegation fails, read the error before doing anything else.
2. Try a different peer when one fits, or retry once if the error looks transient.
3. If no peer can do it, do the task yourself only when it is within your role; otherwise say so.
4. Never pretend a delegated task succeeded: tell the user what failed and why."""


PLATFORM_INSTRUCTIONS_HEADING = "# Platform Instructions"


def with_platform_instructions(prompt: str, extras: "WorkspaceExtras | None") -> str:
    """``prompt`` with the platform's instructions (if any) in front: they come first whatever
    else the prompt says (§3.4 step 1), an explicit ``system_prompt`` in config.yaml included."""
    text = (extras.platform_instructions if extras is not None else "").strip()
    if not text:
        return prompt
    return "\n\n".join(p for p in (f"{PLATFORM_INSTRUCTIONS_HEADING}\n{text}", prompt) if p)


def build_system_prompt(config_path: str | Path, prompt_files: list[str], skills: list, *,
                        tool_names: list[str] | None = None, extras: "WorkspaceExtras | None" = None) -> str:
    """Platform instructions, prompt files, MEMORY.md/USER.md, parent context, plugin rules,
    guidelines (plugin fragments + coordinator team block), skills, the tool list and the
    delegation rules (§3.4)."""
    config_dir = Path(config_path)
    parts: list[str] = []
    files = list(prompt_files or ["system-prompt.md"])
    for extra in ("MEMORY.md", "USER.md"):
        if extra not in files:
            files.append(extra)
    for rel in files:
        path = config_dir / rel
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                parts.append(text)
    if extras is not None:
        parts.extend(extras.prompt_sections())
    skill_blocks = []
    for skill in skills:
        block = f"### {skill.metadata.name}"
        if skill.metadata.description:
            block += f"\n{skill.metadata.description}"
        if skill.instructions:
            block += f"\n{skill.instructions}"
        skill_blocks.append(block)
    if skill_blocks:
        parts.append("## Your Skills\n" + "\n\n".join(skill_blocks))
    if tool_names:
        parts.append("## Your Tools\nYou can call these tools: " + ", ".join(sorted(tool_names)) +
                     ". Use list_peers to find workspaces to delegate to, and commit_memory / search_memory "
                     "to remember and recall facts.")
        if "delegate_task" in tool_names:
            parts.append(DELEGATION_RULES)
    return with_platform_instructions("\n\n".join(parts), extras)


def collect_tools(builtin: Mapping[str, Callable], skills: list,
                  extras: "WorkspaceExtras | None" = None) -> dict[str, Callable]:
    """Built-in tools first, then each skill's tools (a skill may override a built-in), then
    `route_task_to_team` for a coordinator (it delegates through the returned map)."""
    tools = dict(builtin)
    for skill in skills:
        tools.update(skill.tools)
    if extras is not None and extras.children:
        tools["route_task_to_team"] = make_route_tool(extras.children, tools)
    return tools


@dataclass
class WorkspaceExtras:
    """What setup learns beyond config.yaml: plugins (§8.2), team children and parent context (§8.1),
    and the platform's instructions (§3.1 step 6: Markdown from ``/instructions/resolve``)."""

    plugins: list = dataclasses.field(default_factory=list)
    plugin_skills: list = dataclasses.field(default_factory=list)
    children: list[dict] = dataclasses.field(default_factory=list)
    parent_context: list[dict] = dataclasses.field(default_factory=list)
    platform_instructions: str = ""

    def prompt_sections(self) -> list[str]:
        sections = []
        parent = parent_context_section(self.parent_context)
        if parent:
            sections.append(parent)
        rules = rules_text(self.plugins)
        if rules:
            sections.append("## Platform Rules\n" + "\n\n".join(rules))
        guidelines = fragments_text(self.plugins)
        team = team_section(self.children)
        if team:
            guidelines.append(team)
        if guidelines:
            sections.append("## Platform Guidelines\n" + "\n\n".join(guidelines))
        return sections


async def gather_extras(config: AdapterConfig, runtime: str, env: Mapping[str, str] | None = None) -> WorkspaceExtras:
    """Discover plugins and their skills, and ask the platform (if any) for children / parent context."""
    env = os.environ if env is None else env
    plugins = discover_plugins(config.config_path, env, runtime)
    return WorkspaceExtras(
        plugins=plugins,
        plugin_skills=load_plugin_skills(plugins, runtime),
        children=await find_children(config.platform, config.workspace_id),
        parent_context=await fetch_parent_context(config.platform, env.get("PARENT_ID", "")),
        platform_instructions=await fetch_platform_instructions(config.platform),
    )


async def resume_checkpoints(config: AdapterConfig) -> TaskCheckpoints | None:
    """The task checkpoints of this process (checkpoints.py), with the task a previous process left
    unfinished already read; None without a platform (nothing is recorded then)."""
    if config.platform is None:
        return None
    checkpoints = TaskCheckpoints(config.platform)
    await checkpoints.load_interrupted()
    return checkpoints


async def fetch_platform_instructions(client: Any) -> str:
    """The platform's rules for this workspace, fetched at every boot; "" without a platform or when
    the call fails (logged): an unreachable platform must not keep the agent from starting."""
    if client is None:
        return ""
    try:
        return await client.platform_instructions()
    except (PlatformError, OSError, ValueError) as exc:
        log.warning("platform instructions unavailable, starting without them (%s)", exc)
        return ""


def replace_skills(loaded: list, reloaded: dict) -> list:
    """Apply a hot-reload batch `{skill_id: LoadedSkill | None}` to the loaded skill list."""
    by_id = {s.metadata.id: s for s in loaded}
    for skill_id, skill in reloaded.items():
        if skill is None:
            by_id.pop(skill_id, None)
        else:
            by_id[skill_id] = skill
    return list(by_id.values())


def dump_result(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)


async def invoke_tool(fn: Callable[..., Any], args: dict) -> Any:
    """Call a tool with keyword args; sync skill tools run in a thread so they cannot block the loop."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**args)
    result = await asyncio.to_thread(fn, **args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_tool_for_model(tools: Mapping[str, Callable], name: str, raw_args: str | dict | None) -> str:
    """Run one tool call from a model and return the text fed back to it.

    A model's mistakes (unknown tool, bad JSON, wrong arguments) and unexpected tool exceptions
    come back to the model as `{"error": ...}` so it can correct itself; they do not fail the task.
    """
    fn = tools.get(name)
    if fn is None:
        return dump_result({"error": f"unknown tool '{name}' (available: {', '.join(sorted(tools)) or 'none'})"})
    if isinstance(raw_args, dict):
        args = raw_args
    else:
        try:
            args = json.loads(raw_args) if (raw_args or "").strip() else {}
        except json.JSONDecodeError as exc:
            return dump_result({"error": f"arguments for {name} are not valid JSON: {exc.msg}"})
    if not isinstance(args, dict):
        return dump_result({"error": f"arguments for {name} must be a JSON object"})
    try:
        result = dump_result(await invoke_tool(fn, args))
    except TypeError as exc:
        return dump_result({"error": f"bad arguments for {name}: {exc}"})
    except Exception as exc:  # noqa: BLE001 — the model reads the error and decides
        log.warning("tool %s raised: %r", name, exc)
        result = dump_result({"error": f"{name} failed: {type(exc).__name__}: {exc}"})
    await record_tool_step(name, args, result)  # a step of the running task, checkpointed (checkpoints.py)
    return result


def trace_start(trace: list[dict], name: str, args: Any) -> dict:
    entry = {"tool": name, "input": (args if isinstance(args, str) else json.dumps(args, default=str))[:500]}
    if len(trace) < TRACE_MAX:
        trace.append(entry)
    return entry


# ----------------------------------------------------------------------------- A2A request helpers


def extract_text(context: RequestContext) -> str:
    """Join the text of every part with a space, stripped (spec §3.5 step 1)."""
    message = context.message
    if message is None:
        return ""
    return " ".join(p.text for p in message.parts if p.text).strip()


def _metadata_history(context: RequestContext) -> Any:
    history = None
    try:
        history = (context.metadata or {}).get("history")
    except Exception:  # noqa: BLE001 — malformed metadata must not break the reply
        history = None
    if history is None and context.message is not None and context.message.HasField("metadata"):
        from google.protobuf.json_format import MessageToDict

        history = MessageToDict(context.message.metadata).get("history")
    return history


def extract_history(context: RequestContext) -> list[tuple[str, str]]:
    """`params.metadata.history` → [("user"|"assistant", text)], empty entries dropped (§3.5 step 5)."""
    history = _metadata_history(context)
    out: list[tuple[str, str]] = []
    if not isinstance(history, list):
        return out
    for entry in history:
        if not isinstance(entry, dict):
            continue
        role = "user" if str(entry.get("role", "")).lower() in ("user", "role_user", "human") else "assistant"
        texts = []
        for part in entry.get("parts") or []:
            if isinstance(part, dict):
                text = part.get("text") or (part.get("root") or {}).get("text")
                if text:
                    texts.append(str(text))
        text = " ".join(texts).strip()
        if text:
            out.append((role, text))
    return out


def error_text(exc: BaseException) -> str:
    """`<message>` of a provider/agent error, secrets redacted (an API error may echo a key)."""
    text = str(exc).strip() or type(exc).__name__
    return redact_secrets(text)[:2000]


class TextStream:
    """Emits model text as A2A artifact chunks: one artifact per model call, `append` after the first."""

    def __init__(self, updater: TaskUpdater):
        self.updater = updater
        self._artifact_id: str | None = None
        self._count = 0

    def new_artifact(self) -> None:
        self._artifact_id, self._count = None, 0

    async def write(self, text: str) -> None:
        if not text:
            return
        if self._artifact_id is None:
            self._artifact_id = uuid.uuid4().hex
        await self.updater.add_artifact([Part(text=text)], artifact_id=self._artifact_id,
                                        append=self._count > 0, last_chunk=False)
        self._count += 1


class LLMExecutor(AgentExecutor):
    """A2A skeleton shared by the LLM executors (spec §3.5), mirroring the echo executor's events.

    Subclasses implement `run(text, history, stream, trace) -> final reply text`. This class
    handles the empty-text error, heartbeat current task and error counting (+ an immediate
    push), the submitted/working task events, `tool_trace` metadata, `Agent error: …` replies
    (terminal status `failed`), `tasks/cancel` (the running call is cancelled) and attachments
    (incoming files listed after the text; `/workspace/…` files the reply names sent as FileParts).
    """

    runtime_label = "llm"

    def __init__(self, *, heartbeat: Any = None, beat_now: Callable[[], Awaitable[Any]] | None = None,
                 tools: dict[str, Callable[..., Any]] | None = None, system_prompt: str = "",
                 transcript: Callable[[str, str], None] | None = None, chat_files: ChatFiles | None = None,
                 checkpoints: TaskCheckpoints | None = None):
        self.heartbeat = heartbeat
        self.beat_now = beat_now
        self.tools = dict(tools or {})
        self.system_prompt = system_prompt
        self.chat_files = chat_files or ChatFiles()
        self.checkpoints = checkpoints
        self.transcript = transcript
        self._running: dict[str, asyncio.Task] = {}
        self._cancelled: set[str] = set()

    @abstractmethod
    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream,
                  trace: list[dict]) -> str:
        """Produce the final reply: stream text through ``stream``, append tool calls to ``trace``."""

    # -------------------------------------------------------------- heartbeat hooks
    async def _push(self) -> None:
        if self.beat_now is None:
            return
        try:
            await self.beat_now()
        except Exception:  # noqa: BLE001
            log.warning("heartbeat push failed", exc_info=True)

    async def _task_started(self, brief: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.task_started(brief)
        await self._push()

    async def _task_finished(self, ok: bool, error: str | None) -> None:
        if self.heartbeat is not None:
            self.heartbeat.task_finished(ok, error)
        await self._push()

    # -------------------------------------------------------------- AgentExecutor
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = (extract_text(context) + describe(await self.chat_files.receive(context.message))).strip()
        if not text:
            await event_queue.enqueue_event(updater.new_agent_message([Part(text=NO_TEXT)]))
            return
        if self.transcript:
            self.transcript("user", text)
        task_key = context.task_id or ""
        files: list[Part] = []
        await self._task_started(text)
        trace: list[dict] = []
        ok, error = True, None
        record, run_text = (await self.checkpoints.begin(task_key, text)) if self.checkpoints else (None, text)
        ended = True  # answered, failed or cancelled by tasks/cancel; a stop interrupts it instead
        try:
            if context.current_task is None:  # a2a-sdk 1.x: the Task must be enqueued first
                await event_queue.enqueue_event(new_task(context.task_id, context.context_id,
                                                         TaskState.TASK_STATE_SUBMITTED,
                                                         history=[context.message]))
            await updater.start_work()
            token = activate(record)  # the run's tool calls are checkpointed under this task
            try:
                inner = asyncio.ensure_future(self.run(run_text, extract_history(context), TextStream(updater), trace))
            finally:
                deactivate(token)
            self._running[task_key] = inner
            try:
                reply = (await inner).strip() or NO_RESPONSE
                files = await self.chat_files.reply_parts(reply)
            except asyncio.CancelledError:
                if task_key in self._cancelled:  # tasks/cancel: the terminal status is already out
                    return  # a cancel is not an agent error (as echo's /sleep)
                ended = False  # the process is stopping: keep the checkpoints for the next boot
                raise
        except Exception as exc:  # noqa: BLE001 — errors are replies, not JSON-RPC errors
            ok, error = False, error_text(exc)
            log.info("%s task failed: %s", self.runtime_label, error)
            reply = f"Agent error: {error}"
        finally:
            self._running.pop(task_key, None)
            self._cancelled.discard(task_key)
            if record is not None and ended:
                await self.checkpoints.end(record)
            await self._task_finished(ok, error)
        await finish_task(updater, reply=reply, ok=ok, trace=trace, transcript=self.transcript, files=files)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_key = context.task_id or ""
        running = self._running.get(task_key)
        if running is not None and not running.done():
            self._cancelled.add(task_key)
            running.cancel()
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


class LLMAdapter(TranscriptMixin, BaseAdapter):
    """What the OpenAI-compatible adapters share: settings resolution, preflight, skills, tools,
    system prompt and transcript. Subclasses name themselves, their extra and their executor."""

    REQUIRED_MODULES: tuple[str, ...] = ()
    EXTRA = ""

    def __init__(self) -> None:  # no side effects: the heartbeat may instantiate this class
        self.loaded_skills = []
        self.all_tools = {}
        self.system_prompt = ""
        self.settings = None
        self.checkpoints = None
        self._executor = None
        self._prompt_source = None
        self._prompt_tail: list[str] = []

    def executor_class(self):
        """The executor class (imported lazily by subclasses, so the heavy SDK loads only when used)."""
        raise TypeError(f"{type(self).__name__} must name its executor class")

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        return check_adapter_config(self.name(), config.model, config.runtime_config.as_dict(), env,
                                    self.REQUIRED_MODULES, self.EXTRA)

    async def setup(self, config: AdapterConfig) -> None:
        """The dependency check, the settings (:meth:`resolve_settings`, which adapters with settings
        of their own override), then the workspace's skills, tools and prompt."""
        self.require_dependencies()
        self.settings = self.resolve_settings(config)
        await self.load_workspace(config)

    def require_dependencies(self) -> None:
        missing = missing_modules(self.REQUIRED_MODULES)
        if missing:
            raise RuntimeError(f"runtime '{self.name()}' needs the Python package(s) {', '.join(missing)}: "
                               f"pip install 'molecule-runtime[{self.EXTRA}]'")

    def resolve_settings(self, config: AdapterConfig):
        """The OpenAI-compatible endpoint, model and key; RuntimeError naming what is missing (in
        smoke mode a missing key gets a stand-in that is never sent anywhere real)."""
        try:
            settings = resolve_llm_settings(config.model, config.runtime_config, os.environ)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = settings_problems(settings, self.name())
        if problems and not config.smoke_mode:
            raise RuntimeError("; ".join(p.detail for p in problems))
        if config.smoke_mode and not settings.api_key:  # smoke mode never reaches a real provider
            settings = dataclasses.replace(settings, api_key="sk-smoke-never-sent")
        return settings

    async def load_workspace(self, config: AdapterConfig) -> None:
        """Plugins, skills, the tool map and the system prompt (spec §3.1 ``_common_setup``)."""
        config_path = Path(config.config_path)
        extras = await gather_extras(config, self.name())
        self.loaded_skills = load_skills(config_path, list(config.tools), current_runtime=self.name())
        self.loaded_skills += extras.plugin_skills
        self.all_tools = collect_tools(config.builtin_tools, self.loaded_skills, extras)
        self.checkpoints = await resume_checkpoints(config)
        # what a hot reload rebuilds the prompt from (nothing when config.yaml gives the prompt)
        self._prompt_source = None if config.system_prompt else (config_path, list(config.prompt_files), extras)
        self.system_prompt = with_platform_instructions(config.system_prompt, extras) if config.system_prompt else \
            build_system_prompt(config_path, config.prompt_files, self.loaded_skills,
                                tool_names=list(self.all_tools), extras=extras)

    async def create_executor(self, config: AdapterConfig):
        self._executor = self.executor_class()(settings=self.settings, heartbeat=config.heartbeat,
                                               beat_now=config.beat_now, tools=self.all_tools,
                                               system_prompt=self.system_prompt, transcript=self.record,
                                               chat_files=ChatFiles(platform=config.platform),
                                               checkpoints=self.checkpoints)
        return self._executor

    def replace_skills(self, reloaded: dict) -> None:
        """Hot-reload hook: swap reloaded skills and rebuild the tool map and the system prompt
        (its ``## Your Skills`` section) the model sees: the executor reads both on its next task,
        so a promoted skill's instructions are followed without a restart. What was added after the
        prompt was built (the CLI's inter-agent block, the pre-stop snapshot) stays at its end."""
        old_skill_tools = {n for s in self.loaded_skills for n in s.tools}
        self.loaded_skills = replace_skills(self.loaded_skills, reloaded)
        builtin = {n: f for n, f in self.all_tools.items() if n not in old_skill_tools}
        self.all_tools = collect_tools(builtin, self.loaded_skills)
        source = getattr(self, "_prompt_source", None)
        if source is not None:
            config_path, prompt_files, extras = source
            base = build_system_prompt(config_path, prompt_files, self.loaded_skills,
                                       tool_names=list(self.all_tools), extras=extras)
            self.system_prompt = "\n\n".join(p for p in (base, *self._prompt_tail) if p)
        self._sync_executor()

    def restore_state(self, snapshot: dict) -> None:
        """The base class's restore, and the snapshot's prompt section handed to the executor
        (created before the snapshot is read) and kept through later prompt rebuilds."""
        super().restore_state(snapshot)
        self._prompt_tail.append(snapshot_prompt_section(snapshot))
        self._sync_executor()

    def _sync_executor(self) -> None:
        if self._executor is not None:
            self._executor.tools = self.all_tools
            self._executor.system_prompt = self.system_prompt

    async def transcript_lines(self, since: int = 0, limit: int = 100) -> dict:
        lines = self._transcript()[since: since + limit]
        cursor = since + len(lines)
        return {"runtime": self.name(), "supported": True, "lines": lines, "cursor": cursor,
                "more": cursor < len(self._transcript()), "source": "memory"}
