"""Plugins, read-only subset of spec/runtime.md §8.2.

A plugin is a folder. Discovery looks in ``<config>/plugins/<name>/`` first, then in the shared
``PLUGINS_DIR`` (default ``/plugins``); folders are deduplicated by name and the per-workspace
copy wins. From each plugin we read:

- ``plugin.yaml`` (optional): ``name``, ``version`` ("0.0.0"), ``description``, ``runtimes`` (empty
  or ``*``: every runtime; a plugin whose list leaves the current runtime out is inert and not
  loaded); a missing or bad file means name = folder name;
- ``rules/*.md`` (sorted, non-empty) → the prompt section ``## Platform Rules``;
- root ``*.md`` except README/CHANGELOG/LICENSE/CONTRIBUTING → ``## Platform Guidelines``;
- ``skills/<skill>/SKILL.md`` → loaded in place with ``skills.load_skills`` (nothing is copied).

Installing is the platform's job (``POST /workspaces/:id/plugins``): it writes the plugin into
``<config>/plugins/<name>/`` and restarts the workspace, and this module finds it there at boot.
Out of scope (not implemented): the runtime-side install pipeline (``install_plugins_via_registry``,
registry/plugin-shipped adaptors, ``RawDropAdaptor``), ``setup.sh``, hooks/commands and the Claude
layer (``settings-fragment.json``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from .skills import LoadedSkill, load_skills

log = logging.getLogger(__name__)

DEFAULT_PLUGINS_DIR = "/plugins"
NOT_FRAGMENTS = {"readme", "changelog", "license", "contributing"}


@dataclass
class Plugin:
    name: str
    path: Path
    version: str = "0.0.0"
    description: str = ""
    rules: list[tuple[str, str]] = field(default_factory=list)  # (file name, text)
    fragments: list[tuple[str, str]] = field(default_factory=list)
    skill_names: list[str] = field(default_factory=list)
    runtimes: list[str] = field(default_factory=list)

    def supports(self, runtime: str) -> bool:
        return not runtime or not self.runtimes or "*" in self.runtimes or runtime in self.runtimes


def _read_md(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("plugin file %s unreadable: %s", path, exc)
        return ""


def load_plugin(path: str | Path) -> Plugin:
    root = Path(path)
    plugin = Plugin(name=root.name, path=root)
    manifest = root / "plugin.yaml"
    if manifest.is_file():
        try:
            data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            log.warning("plugin %s: bad plugin.yaml (%s); using the folder name", root.name, exc)
            data = None
        if isinstance(data, dict):
            plugin.name = str(data.get("name") or root.name)
            plugin.version = str(data.get("version") or "0.0.0")
            plugin.description = str(data.get("description") or "")
            runtimes = data.get("runtimes")
            runtimes = [runtimes] if isinstance(runtimes, str) else runtimes
            plugin.runtimes = [str(r) for r in runtimes] if isinstance(runtimes, list) else []
    rules_dir = root / "rules"
    if rules_dir.is_dir():
        for md in sorted(rules_dir.glob("*.md")):
            text = _read_md(md) if md.is_file() else ""
            if text:
                plugin.rules.append((md.name, text))
    for md in sorted(root.glob("*.md")):
        if md.is_file() and md.stem.lower() not in NOT_FRAGMENTS:
            text = _read_md(md)
            if text:
                plugin.fragments.append((md.name, text))
    skills_dir = root / "skills"
    if skills_dir.is_dir():
        plugin.skill_names = sorted(d.name for d in skills_dir.iterdir() if (d / "SKILL.md").is_file())
    return plugin


def plugin_dirs(config_path: str | Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """Plugin folders in discovery order, deduplicated by folder name (per-workspace wins)."""
    env = os.environ if env is None else env
    roots = [Path(config_path) / "plugins", Path(env.get("PLUGINS_DIR") or DEFAULT_PLUGINS_DIR)]
    seen: set[str] = set()
    out: list[Path] = []
    for root in roots:
        try:
            entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        for entry in entries:
            if entry.name not in seen:
                seen.add(entry.name)
                out.append(entry)
    return out


def discover_plugins(config_path: str | Path, env: Mapping[str, str] | None = None,
                     runtime: str = "") -> list[Plugin]:
    """The plugins found, less those whose ``runtimes`` leave ``runtime`` out (inert here)."""
    plugins = []
    for path in plugin_dirs(config_path, env):
        plugin = load_plugin(path)
        if plugin.supports(runtime):
            plugins.append(plugin)
        else:
            log.info("plugin %s is inert on runtime %s (runtimes: %s)", plugin.name, runtime, plugin.runtimes)
    return plugins


def load_plugin_skills(plugins: list[Plugin], current_runtime: str = "") -> list[LoadedSkill]:
    """Each plugin's skills, loaded from the plugin folder itself."""
    out: list[LoadedSkill] = []
    for plugin in plugins:
        out.extend(load_skills(plugin.path, plugin.skill_names, current_runtime))
    return out


def rules_text(plugins: list[Plugin]) -> list[str]:
    return [text for p in plugins for _, text in p.rules]


def fragments_text(plugins: list[Plugin]) -> list[str]:
    return [text for p in plugins for _, text in p.fragments]
