"""Workspace templates: discovery, listing, import, and the rel-path rule (spec §14, §5.1).

A template is a directory of ``CONFIGS_DIR`` holding a ``config.yaml`` (runtime spec §1), usually
with ``system-prompt.md`` and ``skills/<name>/SKILL.md``. ``CONFIGS_DIR`` comes from settings: the
``CONFIGS_DIR`` env var, else the repository's ``workspace-configs-templates`` (anchored at the
code, not the working directory, so the original's ``../`` search is not needed).

The rel-path rule lives here because every route that takes a path inside a directory — template
import, the Files API, bundles — applies the same one.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote

import yaml
from django.conf import settings

from molecule_site.errors import ApiError
from workspaces import validators
from workspaces.models import WorkspaceConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
MAX_IMPORT_FILES = 200
MAX_FILE_BYTES = 1 << 20  # 1 MiB per file, for imports and the Files API alike
DEFAULT_MODEL = "anthropic:claude-opus-4-7"
CLAUDE_CODE_DEFAULT_MODEL = "sonnet"
RUNTIMES_WITHOUT_TIMEOUT = ("langgraph", "deepagents")
UNNAMED = "unnamed"


# --- the rel-path rule ---------------------------------------------------------------------------

NAME_MAX_BYTES = 255  # Linux NAME_MAX / PATH_MAX
PATH_MAX_BYTES = 4096


def rel_path_is_valid(path) -> bool:
    """Spec §14: non-empty, not ``.``, not absolute, no ``..`` anywhere (raw or cleaned).

    Beyond the original, the percent-decoded form must pass too (``..%2F`` is refused even where
    nothing decodes it) and NUL bytes and backslashes are refused. ``..`` is refused as a
    substring, as in the original, so ``a..b`` is invalid as well. A name longer than the file
    system takes (255 bytes a component, 4096 a path) is invalid here rather than an OS error.
    """
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    encoded = path.encode(errors="surrogatepass")
    if len(encoded) > PATH_MAX_BYTES or any(len(part) > NAME_MAX_BYTES for part in encoded.split(b"/")):
        return False
    for candidate in (path, unquote(path)):
        if candidate.startswith("/") or ".." in candidate or posixpath.normpath(candidate) == ".":
            return False
    return True


# --- discovery and listing -----------------------------------------------------------------------

def configs_dir() -> Path:
    return Path(settings.CONFIGS_DIR)


def read_config(directory: Path) -> dict | None:
    """The parsed ``config.yaml`` of a directory; None when missing or not a YAML mapping."""
    try:
        loaded = yaml.safe_load((directory / CONFIG_FILE).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    except yaml.YAMLError:
        log.warning("template %s has an invalid config.yaml", directory.name)
        return None
    if loaded is None:
        return {}  # the runtime reads an empty file as {}
    return loaded if isinstance(loaded, dict) else None


def template_dirs() -> list[Path]:
    """Every non-hidden subdirectory of CONFIGS_DIR with a config.yaml, sorted by name."""
    base = configs_dir()
    try:
        candidates = sorted(base.iterdir())
    except OSError:
        return []
    return [d for d in candidates if not d.name.startswith(".") and d.is_dir() and (d / CONFIG_FILE).is_file()]


def _string_list(value) -> list[str]:
    return [str(item) for item in value if isinstance(item, (str, int, float))] if isinstance(value, list) else []


def required_env(config: dict) -> list[str]:
    """``runtime_config.required_env`` (enforced by preflight), then ``env.required`` (documentation)."""
    runtime_config = config.get("runtime_config") if isinstance(config.get("runtime_config"), dict) else {}
    env = config.get("env") if isinstance(config.get("env"), dict) else {}
    names = _string_list(runtime_config.get("required_env")) + _string_list(env.get("required"))
    return list(dict.fromkeys(names))


def template_tier(config: dict) -> int:
    """The template's ``tier`` when it is one of 1–4, else 0 (none)."""
    tier = config.get("tier")
    return tier if isinstance(tier, int) and not isinstance(tier, bool) and 1 <= tier <= 4 else 0


def template_role(config: dict) -> str:
    role = config.get("role")
    return role.strip() if isinstance(role, str) else ""


def template_summary(directory: Path, config: dict) -> dict:
    """An item of ``GET /templates``; optional keys are omitted when empty, as Go's omitempty does."""
    runtime, model = template_runtime_and_model(config)
    tier = config.get("tier")
    skills = _string_list(config.get("skills"))
    item = {
        "id": directory.name,
        "name": str(config.get("name") or directory.name),
        "description": str(config.get("description") or ""),
        "tier": tier if isinstance(tier, int) and not isinstance(tier, bool) else 0,
        "runtime": runtime or "",
        "model": model or "",
    }
    models = config.get("models")
    if isinstance(models, list) and models:
        item["models"] = models
    env = required_env(config)
    if env:
        item["required_env"] = env
    item["skills"] = skills
    item["skill_count"] = len(skills)
    timeout = provision_timeout_seconds(config)
    if timeout:
        item["provision_timeout_seconds"] = timeout
    return item


def provision_timeout_seconds(config: dict) -> int | None:
    """``runtime_config.provision_timeout_seconds`` when it is a positive integer."""
    runtime_config = config.get("runtime_config") if isinstance(config.get("runtime_config"), dict) else {}
    timeout = runtime_config.get("provision_timeout_seconds")
    return timeout if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0 else None


def provision_timeouts_ms(workspaces) -> dict:
    """``{workspace_id: ms}`` for workspaces whose recorded template sets a provision timeout.

    One query for the recorded templates, one config read per distinct template.
    """
    recorded = dict(
        WorkspaceConfig.objects.filter(workspace__in=workspaces).values_list("workspace_id", "data")
    )
    per_template: dict[str, int | None] = {}
    timeouts = {}
    for workspace_id, data in recorded.items():
        template = data.get("template") if isinstance(data, dict) else None
        if not isinstance(template, str) or not template:
            continue
        if template not in per_template:
            directory = _template_dir(template)
            config = read_config(directory) if directory else None
            per_template[template] = provision_timeout_seconds(config) if config else None
        if per_template[template]:
            timeouts[workspace_id] = per_template[template] * 1000
    return timeouts


def template_list() -> list[dict]:
    """``GET /templates``: one item per template directory (unreadable configs are skipped)."""
    items = []
    for directory in template_dirs():
        config = read_config(directory)
        if config is not None:
            items.append(template_summary(directory, config))
    return items


# --- resolution for a workspace ----------------------------------------------------------------------

def normalize_name(name: str) -> str:
    """Spec §14: lowercase, space/dash → ``-``, keep ``[a-z0-9_]``, strip ``..``, empty → ``unnamed``."""
    lowered = name.lower().replace(" ", "-")
    kept = re.sub(r"[^a-z0-9_-]", "", lowered).replace("..", "")
    return kept or UNNAMED


def _template_dir(name: str | None) -> Path | None:
    if not name or not validators.template_path_is_safe(name, configs_dir().resolve()):
        return None
    directory = configs_dir() / name
    return directory if (directory / CONFIG_FILE).is_file() else None


def template_dir_by_config_name(name: str) -> Path | None:
    """The first template (by directory name) whose config.yaml ``name`` equals ``name``."""
    for directory in template_dirs():
        config = read_config(directory)
        if config is not None and config.get("name") == name:
            return directory
    return None


def template_dir_for(workspace) -> Path | None:
    """The template a workspace without files of its own falls back to, or None.

    In order: the template recorded at create (``workspace_config.template``), the directory
    named like the normalised workspace name, then the template whose config.yaml ``name``
    matches. The original's last resort — the first template found — is not kept: it shows an
    unrelated template's files as the workspace's own.
    """
    data = WorkspaceConfig.objects.filter(workspace_id=workspace.id).values_list("data", flat=True).first()
    recorded = data.get("template") if isinstance(data, dict) else None
    return (
        _template_dir(recorded if isinstance(recorded, str) else None)
        or _template_dir(normalize_name(workspace.name))
        or template_dir_by_config_name(workspace.name)
    )


def template_runtime_and_model(config: dict) -> tuple[str | None, str | None]:
    runtime = config.get("runtime") if isinstance(config.get("runtime"), str) else None
    model = config.get("model") if isinstance(config.get("model"), str) else None
    runtime_config = config.get("runtime_config")
    if model is None and isinstance(runtime_config, dict) and isinstance(runtime_config.get("model"), str):
        model = runtime_config["model"]
    return runtime, model


# --- generated config.yaml -----------------------------------------------------------------------------

def default_config_yaml(*, name: str, description: str = "", tier: int = 1, runtime: str | None = None,
                        model: str | None = None) -> str:
    """The config.yaml generated when none exists (spec §5.1 step 6)."""
    runtime = runtime or "langgraph"
    config = {
        "name": name,
        "description": description,
        "version": "1.0.0",
        "tier": tier,
        "runtime": runtime,
        "model": model or (CLAUDE_CODE_DEFAULT_MODEL if runtime == "claude-code" else DEFAULT_MODEL),
    }
    if runtime not in RUNTIMES_WITHOUT_TIMEOUT:
        config["runtime_config"] = {"timeout": 0}
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


# --- import ----------------------------------------------------------------------------------------------

def template_import(*, name, files) -> dict:
    """``POST /templates/import``: write a new template directory from ``{path: content}``.

    The directory is built under a hidden temporary name and renamed into place, so a half-written
    template is never listed and a failed import leaves nothing behind. Each file is capped at
    ``MAX_FILE_BYTES`` (413, beyond the original).
    """
    if not isinstance(name, str) or not name or not isinstance(files, dict):
        raise ApiError("invalid request body")
    if len(files) > MAX_IMPORT_FILES:
        raise ApiError(f"too many files ({len(files)}), max {MAX_IMPORT_FILES}")
    template_id = normalize_name(name)
    base = configs_dir()
    target = base / template_id
    if target.exists():
        raise ApiError("template already exists", status=409, id=template_id)
    encoded = {}
    for path, content in files.items():
        if not rel_path_is_valid(path) or not isinstance(content, str):
            raise ApiError("invalid request body")
        data = content.encode()
        if len(data) > MAX_FILE_BYTES:
            raise ApiError("file too large", status=413, path=path, max_bytes=MAX_FILE_BYTES)
        encoded[posixpath.normpath(path)] = data
    if CONFIG_FILE not in encoded:
        encoded[CONFIG_FILE] = default_config_yaml(name=name).encode()

    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=base))
    try:
        for path, data in encoded.items():
            destination = staging / path
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(data)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                raise ApiError("invalid request body") from None  # "a" and "a/b" both given
        try:
            os.rename(staging, target)
        except OSError:
            raise ApiError("template already exists", status=409, id=template_id) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"status": "imported", "id": template_id, "name": name}
