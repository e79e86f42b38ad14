"""Field rules for workspace input (spec §5.1, §5.4), with the original's exact messages.

Each check returns the specific message (PATCH shows it) or None; create collapses any of them
into ``invalid workspace fields``.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

FORBIDDEN_NAME_CHARACTERS = set("{}[]|>*&!")
FIELD_LIMITS = {"name": 255, "role": 1000, "model": 100, "runtime": 100}
NAME_LIKE = {"name", "role"}  # fields that also refuse template/markup characters
SYSTEM_DIRECTORIES = ("/etc", "/var", "/proc", "/sys", "/dev", "/boot", "/sbin", "/bin", "/lib", "/usr")
ACCESS_VALUES = ("none", "read_only", "read_write")


def field_problem(field: str, value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return f"{field} must not contain newline characters"
    if field in NAME_LIKE and FORBIDDEN_NAME_CHARACTERS.intersection(value):
        return f"{field} contains invalid characters"
    limit = FIELD_LIMITS[field]
    if len(value) > limit:
        return f"{field} must be at most {limit} characters"
    return None


def workspace_dir_is_valid(path: str) -> bool:
    """Absolute, no ``..``, and not a system directory or anything below one."""
    if not path.startswith("/") or ".." in path.split("/"):
        return False
    cleaned = posixpath.normpath(path)
    return not any(cleaned == d or cleaned.startswith(d + "/") for d in SYSTEM_DIRECTORIES) and cleaned != "/"


def workspace_access_problem(access: str | None, workspace_dir: str | None) -> bool:
    """True when the access value is unknown, or grants access without a directory."""
    if access in (None, "", "none"):
        return False
    return access not in ACCESS_VALUES or not workspace_dir


def template_path_is_safe(template: str, configs_dir: Path) -> bool:
    """The template must name a directory inside CONFIGS_DIR (no absolute paths, no ``..``)."""
    if not template or template.startswith("/") or ".." in Path(template).parts:
        return False
    resolved = (configs_dir / template).resolve()
    return resolved == configs_dir or configs_dir in resolved.parents
