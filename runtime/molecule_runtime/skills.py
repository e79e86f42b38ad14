"""Skills: `skills/<name>/SKILL.md` + `scripts/*.py` tools, and hot reload (spec §6.1-6.3).

Tool modules: the runtime has no LangChain, so a tool is any public callable *defined in*
the script module (functions/classes imported from elsewhere are ignored), or, if the
module sets `TOOLS` (a list of callables or a name->callable dict), exactly those.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .secret_env import SECRET_ENV_VARS

log = logging.getLogger(__name__)

MODULE_PREFIX = "skill_tool_"
POLL_INTERVAL = 3.0
DEBOUNCE_SECS = 1.5


@dataclass
class SkillMetadata:
    id: str
    name: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    runtime: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class LoadedSkill:
    metadata: SkillMetadata
    instructions: str = ""
    tools: dict[str, Callable[..., Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_skill_md(text: str) -> tuple[dict, str, list[str]]:
    """Split YAML front matter from the body. Bad/missing front matter gives {} + a warning."""
    warnings: list[str] = []
    if not text.startswith("---"):
        return {}, text.strip(), ["SKILL.md has no front matter"]
    parts = text.split("---", 2)
    if len(parts) < 3:
        return {}, text.strip(), ["SKILL.md front matter is not closed"]
    try:
        meta = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as exc:
        return {}, parts[2].strip(), [f"SKILL.md front matter is not valid YAML: {exc}"]
    if not isinstance(meta, dict):
        return {}, parts[2].strip(), ["SKILL.md front matter is not a mapping"]
    return meta, parts[2].strip(), warnings


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _load_tools(skill_dir: Path) -> tuple[dict[str, Callable], list[str]]:
    tools: dict[str, Callable] = {}
    warnings: list[str] = []
    scripts = skill_dir / "scripts"
    if not scripts.is_dir():
        return tools, warnings
    root = scripts.resolve()
    for file in sorted(scripts.glob("*.py")):
        if file.name.startswith("_"):
            continue
        if root not in file.resolve().parents:
            warnings.append(f"{file.name}: resolves outside scripts/, skipped")
            continue
        mod_name = MODULE_PREFIX + file.stem
        # hidden while the module executes (spec §6.2); main also erased them from /proc/self/environ
        saved = {k: os.environ.pop(k) for k in SECRET_ENV_VARS if k in os.environ}
        try:
            spec = importlib.util.spec_from_file_location(mod_name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken script must not take the runtime down
            sys.modules.pop(mod_name, None)
            warnings.append(f"{file.name}: failed to load: {exc!r}")
            log.warning("skill tool %s failed to load: %r", file, exc)
            continue
        finally:
            os.environ.update(saved)
        declared = getattr(module, "TOOLS", None)
        if isinstance(declared, dict):
            tools.update({str(k): v for k, v in declared.items() if callable(v)})
        elif isinstance(declared, (list, tuple)):
            tools.update({getattr(v, "__name__", str(v)): v for v in declared if callable(v)})
        else:
            for attr, value in vars(module).items():
                if attr.startswith("_") or not inspect.isfunction(value):
                    continue
                if value.__module__ == mod_name:
                    tools[attr] = value
    return tools, warnings


def load_skill(config_path: str | Path, name: str, current_runtime: str = "") -> LoadedSkill | None:
    """Load one skill folder; None when SKILL.md is missing or the runtime filter excludes it."""
    skill_dir = Path(config_path) / "skills" / name
    md = skill_dir / "SKILL.md"
    if not md.is_file():
        log.warning("skill %s: %s missing", name, md)
        return None
    meta, body, warnings = parse_skill_md(md.read_text(encoding="utf-8"))
    runtimes = meta.get("runtime", ["*"])
    if isinstance(runtimes, str):
        runtimes = [runtimes]
    if not isinstance(runtimes, list) or not runtimes:
        warnings.append("invalid 'runtime' in front matter; treating the skill as universal")
        runtimes = ["*"]
    runtimes = [str(r) for r in runtimes]
    if current_runtime and "*" not in runtimes and current_runtime not in runtimes:
        log.info("skill %s skipped: runtime %s not in %s", name, current_runtime, runtimes)
        return None
    tools, tool_warnings = _load_tools(skill_dir)
    for w in warnings + tool_warnings:
        log.warning("skill %s: %s", name, w)
    return LoadedSkill(
        metadata=SkillMetadata(
            id=name,
            name=str(meta.get("name") or name),
            description=str(meta.get("description") or ""),
            tags=_as_list(meta.get("tags")),
            examples=_as_list(meta.get("examples")),
            runtime=runtimes,
        ),
        instructions=body,
        tools=tools,
        warnings=warnings + tool_warnings,
    )


def load_skills(config_path: str | Path, names: list[str], current_runtime: str = "") -> list[LoadedSkill]:
    out = []
    for name in names:
        skill = load_skill(config_path, name, current_runtime)
        if skill is not None:
            out.append(skill)
    return out


def evict_skill_modules() -> None:
    for key in [k for k in sys.modules if k.startswith(MODULE_PREFIX)]:
        del sys.modules[key]


class SkillsWatcher:
    """Watch the configured skill folders with watchfiles and reload changed skills.

    `poll_interval` and `debounce` are injectable (production 3 s / 1.5 s); debounce groups a
    burst of writes (an editor saving SKILL.md and scripts) into one reload. After each batch the
    changed skills are reloaded and `on_reload({skill_id: LoadedSkill | None})` (None = the
    skill was removed or is now filtered out) is called (sync or async); main wires it to rebuild the card and POST update-card.
    """

    def __init__(self, config_path: str | Path, skill_names: list[str], on_reload: Callable,
                 current_runtime: str = "", poll_interval: float = POLL_INTERVAL,
                 debounce: float = DEBOUNCE_SECS, force_polling: bool | None = None):
        self.config_path = Path(config_path)
        self.skill_names = list(skill_names)
        self.on_reload = on_reload
        self.current_runtime = current_runtime
        self.poll_interval = poll_interval
        self.debounce = debounce
        # None: native file events (inotify…) where available; watchfiles also honours
        # WATCHFILES_FORCE_POLLING for mounts without events. Polling uses `poll_interval`.
        self.force_polling = force_polling
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name="skills-watcher")
        return self._task

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    def _changed_skills(self, changes) -> list[str]:
        skills_root = (self.config_path / "skills").resolve()
        names: list[str] = []
        for _change, path in changes:
            try:
                rel = Path(path).resolve().relative_to(skills_root)
            except ValueError:
                continue
            if not rel.parts or any(p.startswith(".") for p in rel.parts):
                continue
            name = rel.parts[0]
            if name not in self.skill_names and name in self._listed_in_config():
                self.skill_names.append(name)  # promoted (or added) since boot: watched from now on
            if name in self.skill_names and name not in names:
                names.append(name)
        return names

    def _newly_listed(self) -> list[str]:
        """Skills config.yaml lists now whose folder exists but that are not watched yet. inotify
        misses files created in a directory before its watch is added (``skills/`` itself may be
        new), so a batch of any change rescans for them instead of trusting the events alone."""
        found = []
        for name in self._listed_in_config():
            if name not in self.skill_names and (self.config_path / "skills" / name / "SKILL.md").is_file():
                self.skill_names.append(name)
                found.append(name)
        return found

    def _listed_in_config(self) -> list[str]:
        """``skills:`` of config.yaml as it is now (the platform lists a promoted skill there first)."""
        try:
            data = yaml.safe_load((self.config_path / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return []
        listed = data.get("skills") if isinstance(data, dict) else None
        return [str(s) for s in listed] if isinstance(listed, list) else []

    async def run(self) -> None:
        from watchfiles import awatch

        # the whole config dir: skills/ may not exist yet (the platform creates it when it
        # promotes the first skill) and the runtime may not be allowed to create it itself;
        # changes outside skills/ are filtered out by _changed_skills
        self.ready.set()
        async for changes in awatch(
            self.config_path,
            stop_event=self._stop,
            debounce=int(self.debounce * 1000),
            step=min(50, max(1, int(self.poll_interval * 1000))),
            force_polling=self.force_polling,
            poll_delay_ms=max(1, int(self.poll_interval * 1000)),
            recursive=True,
        ):
            names = self._changed_skills(changes)
            names += [n for n in self._newly_listed() if n not in names]
            if not names:
                continue
            evict_skill_modules()
            reloaded: dict[str, LoadedSkill | None] = {}
            for name in names:
                try:
                    reloaded[name] = load_skill(self.config_path, name, self.current_runtime)
                except Exception:
                    log.exception("skill %s: reload failed", name)
            log.info("skills reloaded: %s", names)
            try:
                result = self.on_reload(reloaded)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("skills on_reload callback failed")
