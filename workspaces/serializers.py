"""Input parsing for workspace routes, with the original's exact error strings.

Plain functions instead of DRF serializers: the contract fixes one message per failure class
(``invalid workspace payload`` vs ``invalid workspace fields`` vs a field's own sentence), which
is clearer written out than mapped from serializer errors. JSON types are strict, as in Go's
binding: a string where a number belongs is a bind failure, not a coercion.
"""

from __future__ import annotations

import uuid

from django.conf import settings

from molecule_site.errors import ApiError
from secrets_app.services import is_valid_secret_key
from workspaces import validators
from workspaces.services import NewWorkspace


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(data: dict, key: str, check, error: str, default=None):
    """``data[key]`` if present and of the right type; JSON null reads as absent."""
    value = data.get(key)
    if value is None:
        return default
    if not check(value):
        raise ApiError(error)
    return value


def _uuid_or_none(value, error: str) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(error)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(error) from None


def _memories_bind(value) -> bool:
    """``initial_memories`` binds like the original's struct list: objects whose ``content`` and
    ``scope`` are strings (or absent / null)."""
    return isinstance(value, list) and all(
        isinstance(m, dict) and all(isinstance(m.get(key), (str, type(None))) for key in ("content", "scope"))
        for m in value)


def parse_new_workspace(data) -> NewWorkspace:
    """``POST /workspaces`` body → :class:`NewWorkspace` (spec §5.1)."""
    bad_payload = "invalid workspace payload"
    if not isinstance(data, dict):
        raise ApiError(bad_payload)
    text = lambda key: _typed(data, key, lambda v: isinstance(v, str), bad_payload)  # noqa: E731
    name = text("name")
    if not name:
        raise ApiError(bad_payload)
    values = {key: text(key) for key in ("role", "template", "model", "runtime", "url", "workspace_dir", "workspace_access")}
    tier = _typed(data, "tier", _is_int, bad_payload, 0)
    max_tasks = _typed(data, "max_concurrent_tasks", _is_int, bad_payload, 1)
    budget = _typed(data, "budget_limit", _is_int, bad_payload)
    external = _typed(data, "external", lambda v: isinstance(v, bool), bad_payload, False)
    parent_id = _uuid_or_none(data.get("parent_id"), bad_payload)
    secrets = _typed(
        data, "secrets",
        lambda v: isinstance(v, dict) and all(is_valid_secret_key(k) and isinstance(s, str) for k, s in v.items()),
        bad_payload, {},
    )
    canvas = _typed(
        data, "canvas", lambda v: isinstance(v, dict) and all(_is_number(v.get(k, 0)) for k in ("x", "y")), bad_payload, {}
    )
    memories = _typed(data, "initial_memories", _memories_bind, bad_payload, [])

    fields = {"name": name, **{k: values[k] for k in ("role", "model", "runtime")}}
    if any(value and validators.field_problem(key, value) for key, value in fields.items()):
        raise ApiError("invalid workspace fields")
    if not 0 <= tier <= 4 or (budget is not None and budget < 0):
        raise ApiError("invalid workspace fields")
    if values["url"] and not values["url"].startswith(("http://", "https://")):
        raise ApiError("invalid workspace fields")
    if values["template"] and not validators.template_path_is_safe(values["template"], settings.CONFIGS_DIR):
        raise ApiError("invalid template")
    if values["workspace_dir"] and not validators.workspace_dir_is_valid(values["workspace_dir"]):
        raise ApiError("invalid workspace directory")
    if validators.workspace_access_problem(values["workspace_access"], values["workspace_dir"]):
        raise ApiError("invalid workspace access")

    return NewWorkspace(
        name=name,
        role=values["role"],
        template=values["template"],
        tier=tier,
        model=values["model"],
        runtime=values["runtime"],
        external=external,
        url=values["url"],
        workspace_dir=values["workspace_dir"],
        workspace_access=values["workspace_access"] or "none",
        parent_id=parent_id,
        budget_limit=budget,
        secrets=secrets,
        max_concurrent_tasks=max_tasks,
        x=canvas.get("x", 0),
        y=canvas.get("y", 0),
        initial_memories=memories,
    )


MAX_HIBERNATION_IDLE_MINUTES = 60 * 24 * 365


def parse_workspace_changes(data) -> dict:
    """``PATCH /workspaces/:id`` body → the keys to apply (spec §5.4); absent keys are left alone."""
    bad_body = "invalid request body"
    if not isinstance(data, dict):
        raise ApiError(bad_body)
    changes: dict = {}
    for key in ("name", "role", "runtime"):
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or (key == "name" and not value):
            raise ApiError(bad_body)
        problem = validators.field_problem(key, value)
        if problem:
            raise ApiError(problem)
        changes[key] = value
    if "tier" in data:
        if not _is_int(data["tier"]) or not 1 <= data["tier"] <= 4:
            raise ApiError(bad_body)
        changes["tier"] = data["tier"]
    if "parent_id" in data:
        changes["parent_id"] = _uuid_or_none(data["parent_id"], bad_body)
    if "collapsed" in data:
        if not isinstance(data["collapsed"], bool):
            raise ApiError(bad_body)
        changes["collapsed"] = data["collapsed"]
    for key in ("x", "y"):
        if key in data:
            if not _is_number(data[key]):
                raise ApiError(bad_body)
            changes[key] = data[key]
    if "hibernation_idle_minutes" in data:
        value = data["hibernation_idle_minutes"]
        if value is not None and (not _is_int(value) or not 0 <= value <= MAX_HIBERNATION_IDLE_MINUTES):
            raise ApiError("hibernation_idle_minutes must be null or a whole number of minutes from 0 to "
                           f"{MAX_HIBERNATION_IDLE_MINUTES}")
        changes["hibernation_idle_minutes"] = value
    if "workspace_dir" in data:
        value = data["workspace_dir"]
        if value is not None and (not isinstance(value, str) or not validators.workspace_dir_is_valid(value)):
            raise ApiError("invalid workspace directory")
        changes["workspace_dir"] = value or None
    return changes
