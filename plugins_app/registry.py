"""The plugin registry: the plugin folders of ``PLUGINS_DIR`` (spec platform-api §18, runtime §8.2).

A plugin is a folder ``PLUGINS_DIR/<name>/`` with an optional ``plugin.yaml`` (``name, version,
description, author, tags, skills, runtimes``), ``rules/*.md``, root ``*.md`` guidelines and
``skills/<skill>/SKILL.md`` (+ ``scripts/*.py``). The folder name is the plugin's identity (what
``local://<name>`` names and where it is installed, ``/configs/plugins/<name>/``); it must match
:data:`NAME_RE`, so no name can climb out of a directory. A ``plugin.yaml`` that is missing or
malformed leaves the defaults (version ``0.0.0``, no description…); ``skills`` defaults to the
``skills/*/SKILL.md`` folders found, ``runtimes`` to ``[]`` (every runtime).

Reading a plugin's files goes through :class:`workspaces.filestores.Tree`: symlinks pointing out
of the folder are skipped, at most :data:`MAX_FILES` files of at most 1 MiB each.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings

from molecule_site.errors import ApiError
from workspaces.filestores import FileTooLarge, Tree
from workspaces.templates import MAX_FILE_BYTES

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MANIFEST = "plugin.yaml"
MAX_FILES = 200
FIELDS = ("name", "version", "description", "author", "tags", "skills", "runtimes")


def valid_name(name) -> bool:
    return isinstance(name, str) and bool(NAME_RE.match(name))


def _str_list(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, (str, int, float))]
    return []


def parse_manifest(name: str, text: str | None, skill_dirs: list[str]) -> dict:
    """The registry entry of plugin ``name`` from its ``plugin.yaml`` text (None: no file)."""
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        data = None
    data = data if isinstance(data, dict) else {}
    skills = _str_list(data.get("skills")) if "skills" in data else []
    return {
        "name": name,
        "version": str(data.get("version") or "0.0.0"),
        "description": str(data.get("description") or ""),
        "author": str(data.get("author") or ""),
        "tags": _str_list(data.get("tags")),
        "skills": skills or sorted(skill_dirs),
        "runtimes": _str_list(data.get("runtimes")),
    }


def supported_on(entry: dict, runtime: str) -> bool:
    """An empty ``runtimes`` list or ``*`` means every runtime."""
    runtimes = entry.get("runtimes") or []
    return not runtimes or "*" in runtimes or runtime in runtimes


def with_support(entry: dict, runtime: str | None) -> dict:
    return {**entry, "supported_on_runtime": supported_on(entry, runtime)} if runtime else dict(entry)


def skill_dirs(files: list[str]) -> list[str]:
    """Skill folder names among a plugin's relative file paths (``skills/<x>/SKILL.md``)."""
    found = set()
    for rel in files:
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "skills" and parts[2] == "SKILL.md":
            found.add(parts[1])
    return sorted(found)


# --- PLUGINS_DIR ----------------------------------------------------------------------------------

def plugins_dir() -> Path:
    return Path(settings.PLUGINS_DIR)


def _tree(name: str) -> Tree | None:
    if not valid_name(name):
        return None
    tree = Tree(plugins_dir() / name)
    if not tree.exists() or tree.real_base.parent != plugins_dir().resolve():
        return None  # absent, or a symlink to somewhere else
    return tree


def _entry(name: str, tree: Tree) -> dict:
    files = tree.files()
    try:
        text = tree.read(MANIFEST).decode("utf-8", errors="replace") if MANIFEST in files else None
    except (OSError, FileTooLarge, ApiError):
        text = None
    return parse_manifest(name, text, skill_dirs(files))


def registry_list(runtime: str | None = None) -> list[dict]:
    """Every plugin of ``PLUGINS_DIR``, by name; with ``runtime``, each says ``supported_on_runtime``."""
    try:
        names = sorted(p.name for p in plugins_dir().iterdir() if p.is_dir() and valid_name(p.name))
    except OSError:
        return []
    entries = []
    for name in names:
        tree = _tree(name)
        if tree is not None:
            entries.append(with_support(_entry(name, tree), runtime))
    return entries


def registry_get(name: str) -> dict | None:
    tree = _tree(name)
    return _entry(name, tree) if tree is not None else None


def registry_files(name: str) -> dict[str, bytes]:
    """Every file of a registry plugin (relative path → bytes); 404 when there is no such plugin."""
    tree = _tree(name)
    if tree is None:
        raise ApiError(f"plugin {name!r} not found in the registry", status=404)
    rels = tree.files()
    if len(rels) > MAX_FILES:
        raise ApiError(f"plugin has too many files ({len(rels)}), max {MAX_FILES}")
    out = {}
    for rel in rels:
        try:
            out[rel] = tree.read(rel)
        except FileTooLarge:
            raise ApiError(f"plugin file too large: {rel}", status=413, max_bytes=MAX_FILE_BYTES) from None
        except OSError:
            continue
    return out
