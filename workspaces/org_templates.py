"""Org templates: a whole team in one directory (spec §19 "Org templates / import").

Reading and validating only — no database. :mod:`workspaces.org_services` creates the tree.

**Where.** ``ORG_TEMPLATES_DIR/<dir>/org.yaml`` (default ``./org-templates``). ``<dir>`` is one
path component: no ``/``, no ``..``, not hidden.

**org.yaml**::

    name: Engineering Team            # required
    description: What the team does.  # optional
    required_env: [OPENAI_API_KEY]    # global secrets the import needs (400 without them, unless force)
    recommended_env: [GITHUB_TOKEN]   # global secrets worth setting; never block the import
    defaults:                         # fills what a workspace leaves out
      runtime: echo
      tier: 2
      template: demo-specialist
      model: openai:gpt-4.1-mini
    workspaces:                       # the roots, at least one
      - name: PM                      # required
        role: Product manager
        tier: 2                       # 1-4; else the template's tier, else 3
        runtime: echo                 # else the template's runtime, else langgraph
        template: demo-pm             # a CONFIGS_DIR template (its config.yaml must exist)
        model: openai:gpt-4.1-mini
        initial_prompt: /delegate Dev Lead plan the release   # config.yaml's key, over the template's
        initial_memories:
          - {scope: TEAM, content: We ship on Fridays.}   # LOCAL (default), TEAM or GLOBAL (roots only)
        schedules:                    # cron prompts (source "template"), as in a config.yaml; an
          - {name: standup, cron_expr: "0 9 * * 1-5", timezone: Europe/Paris, prompt: Post the plan.}
                                      # entry named like one of the template's replaces it
        children:
          - !include dev-lead.yaml    # any value may come from another file

``initial_prompt`` is what the workspace sends itself on its first boot (runtime spec §3.6): the
import writes it into the workspace's own ``config.yaml`` (its template's, with the key set; ``""``
turns a template's initial prompt off), so one template serves teams whose members differ.

``!include <file>`` loads another YAML file of the same org directory (the path is relative to
the org directory wherever the tag appears); it may include further files. A path leaving the
directory (absolute, ``..``, a symlink pointing out) and an include cycle are refused. Unknown
keys are refused too, so a typo never silently drops part of a team; runtime ``external`` is
refused because its connection token would have no one to go to.

Every problem is a 400 naming the file and the place in it, e.g.
``engineering-team/dev-lead.yaml: children[1].tier: must be an integer from 1 to 4``.

**Listing** (``GET /org/templates``): one item per valid template, sorted by ``dir``::

    {"dir": "engineering-team", "name": "Engineering Team", "description": "…",
     "workspaces": 4, "required_env": [], "recommended_env": ["OPENAI_API_KEY"]}

``workspaces`` counts the whole tree. A directory whose org.yaml does not validate is left out
(and logged); importing it gives the full message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings

from memory.models import MemoryScope
from molecule_site.errors import ApiError
from schedules.inputs import ScheduleInput, TemplateSchedulesError, template_schedules
from workspaces import templates, validators
from workspaces.models import EXTERNAL_RUNTIME

log = logging.getLogger(__name__)

ORG_FILE = "org.yaml"
INLINE_SOURCE = "template"  # how errors name an org given inline in the request body
MAX_WORKSPACES = 200
MAX_DEPTH = 16
MAX_FILES = 64  # org.yaml plus every include, counted per load
MAX_MEMORIES_PER_WORKSPACE = 100
MAX_MEMORY_BYTES = 100_000  # what POST /workspaces keeps of a memory; a template must not exceed it
MAX_PROMPT_CHARS = 64 * 1024  # as a schedule's prompt
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ORG_KEYS = ("name", "description", "required_env", "recommended_env", "defaults", "workspaces")
DEFAULT_KEYS = ("runtime", "tier", "template", "model")
WORKSPACE_KEYS = ("name", "role", "tier", "runtime", "template", "model", "initial_prompt", "initial_memories",
                  "schedules", "children")
MEMORY_KEYS = ("scope", "content")


class OrgTemplateError(ApiError):
    """An org template that cannot be imported; the message names the file and the problem."""

    def __init__(self, message: str):
        super().__init__(message, status=400)


@dataclass(frozen=True)
class OrgWorkspace:
    """One validated workspace of an org, defaults applied; ``tier`` 0 means "the template's"."""

    name: str
    role: str | None
    tier: int
    runtime: str | None
    template: str | None
    model: str | None
    memories: list[tuple[str, str]]  # (scope, content)
    children: list[OrgWorkspace] = field(default_factory=list)
    schedules: list[ScheduleInput] = field(default_factory=list)  # created with source "template"
    initial_prompt: str | None = None  # None: the template's; "" turns it off


@dataclass(frozen=True)
class OrgTemplate:
    dir: str | None  # None for an inline template
    name: str
    description: str
    required_env: list[str]
    recommended_env: list[str]
    workspaces: list[OrgWorkspace]

    @property
    def count(self) -> int:
        def size(node: OrgWorkspace) -> int:
            return 1 + sum(size(child) for child in node.children)

        return sum(size(root) for root in self.workspaces)

    def summary(self) -> dict:
        """An item of ``GET /org/templates``."""
        return {
            "dir": self.dir,
            "name": self.name,
            "description": self.description,
            "workspaces": self.count,
            "required_env": self.required_env,
            "recommended_env": self.recommended_env,
        }


# --- listing and lookup ------------------------------------------------------------------------------

def org_templates_dir() -> Path:
    return Path(settings.ORG_TEMPLATES_DIR)


def org_template_list() -> list[dict]:
    """``GET /org/templates``: every valid org template, sorted by directory name."""
    try:
        candidates = sorted(org_templates_dir().iterdir())
    except OSError:
        return []
    items = []
    for directory in candidates:
        if directory.name.startswith(".") or not (directory / ORG_FILE).is_file():
            continue
        try:
            items.append(org_template_load(directory.name).summary())
        except ApiError as exc:  # an invalid org.yaml, or a directory name no import could give
            log.warning("org template %s skipped: %s", directory.name, exc)
    return items


def org_template_load(directory: str) -> OrgTemplate:
    """The validated org template of ``ORG_TEMPLATES_DIR/<directory>``.

    400 for a ``directory`` that is not a plain name, 404 when there is no such directory, 400
    naming the file for a missing or invalid org.yaml (or include).
    """
    if (not isinstance(directory, str) or not templates.rel_path_is_valid(directory)
            or "/" in directory or directory.startswith(".")):
        raise ApiError("invalid org template dir")
    org_dir = org_templates_dir() / directory
    if not org_dir.is_dir():
        raise ApiError("org template not found", status=404)
    data = _IncludingLoader(org_dir, directory).load(ORG_FILE)
    return _org(data, _At(f"{directory}/{ORG_FILE}"), directory=directory)


def org_template_from_object(data) -> OrgTemplate:
    """An org given inline (``POST /org/import {"template": {…}}``): same rules, no includes."""
    return _org(data, _At(INLINE_SOURCE), directory=None)


# --- YAML with !include ------------------------------------------------------------------------------

class _SourcedDict(dict):
    """A mapping loaded from an included file: errors inside it name that file."""

    source: str


class _SourcedList(list):
    source: str


def _sourced(value, source: str):
    if isinstance(value, dict):
        value = _SourcedDict(value)
    elif isinstance(value, list):
        value = _SourcedList(value)
    else:
        return value
    value.source = source
    return value


class _OrgLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus ``!include``; one per file, all sharing the load's includer."""

    includer: _IncludingLoader
    source: str


def _construct_include(loader: _OrgLoader, node: yaml.Node):
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise OrgTemplateError(f"{loader.includer.label(loader.source)}: line {line}: !include takes one file name")
    return loader.includer.load(loader.construct_scalar(node), included_at=(loader.source, line))


_OrgLoader.add_constructor("!include", _construct_include)


class _IncludingLoader:
    """Loads org.yaml and its includes, refusing paths outside the org directory and cycles."""

    def __init__(self, org_dir: Path, directory: str):
        self.root = org_dir.resolve()
        self.directory = directory
        self.chain: list[str] = []  # files being loaded, outermost first
        self.files_read = 0

    def label(self, name: str) -> str:
        return f"{self.directory}/{name}"

    def load(self, name: str, *, included_at: tuple[str, int] | None = None):
        if included_at:
            where = f"{self.label(included_at[0])}: line {included_at[1]}"
            outside = f"{where}: !include {name!r} is outside the org directory"
        else:
            where = self.label(name)
            outside = f"{where}: leads outside the org directory"
        # the rule first: it refuses NUL bytes, which resolve() cannot take
        if not templates.rel_path_is_valid(name):
            raise OrgTemplateError(outside)
        path = (self.root / name).resolve()
        if self.root not in path.parents:
            raise OrgTemplateError(outside)
        name = path.relative_to(self.root).as_posix()
        if name in self.chain:
            raise OrgTemplateError(f"{where}: include cycle: {' → '.join([*self.chain, name])}")
        self.files_read += 1
        if self.files_read > MAX_FILES:
            raise OrgTemplateError(f"{where}: more than {MAX_FILES} files included")
        text = self._read(path, name)
        self.chain.append(name)
        try:
            loader = _OrgLoader(text)  # refuses non-printable characters already
            loader.includer, loader.source = self, name
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f" at line {mark.line + 1}" if mark else ""
            raise OrgTemplateError(f"{self.label(name)}: invalid YAML{line}: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise OrgTemplateError(f"{self.label(name)}: invalid YAML: {exc}") from None
        finally:
            self.chain.pop()
        return _sourced(data, self.label(name)) if included_at else data

    def _read(self, path: Path, name: str) -> str:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise OrgTemplateError(f"{self.label(name)}: file not found") from None
        except OSError as exc:
            raise OrgTemplateError(f"{self.label(name)}: cannot be read ({exc.strerror})") from None
        if len(raw) > templates.MAX_FILE_BYTES:
            raise OrgTemplateError(f"{self.label(name)}: larger than {templates.MAX_FILE_BYTES} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OrgTemplateError(f"{self.label(name)}: not UTF-8 text") from None


# --- validation --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _At:
    """Where a value sits: its file and its path inside that file, for error messages."""

    source: str
    path: str = ""

    def key(self, name: str) -> _At:
        return _At(self.source, f"{self.path}.{name}" if self.path else name)

    def index(self, position: int) -> _At:
        return _At(self.source, f"{self.path}[{position}]")

    def into(self, value) -> _At:
        """A value that came from an included file is located in that file."""
        source = getattr(value, "source", None)
        return _At(source) if source else self

    def error(self, problem: str) -> OrgTemplateError:
        return OrgTemplateError(f"{self.source}: {self.path}: {problem}" if self.path else f"{self.source}: {problem}")


def _mapping(value, at: _At, allowed: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise at.error("must be a mapping")
    unknown = [str(key) for key in value if key not in allowed]
    if unknown:
        raise at.error(f"unknown key {unknown[0]!r} (expected one of: {', '.join(allowed)})")
    return value


def _list(value, at: _At) -> list:
    if not isinstance(value, list):
        raise at.error("must be a list")
    return value


def _text(data: dict, key: str, at: _At, *, required: bool = False, rule: str | None = None) -> str | None:
    """A string field; ``rule`` applies the POST /workspaces field rule of that name."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise at.key(key).error("is required")
        return None
    if not isinstance(value, str):
        raise at.key(key).error("must be a string")
    problem = validators.field_problem(rule, value) if rule else None
    if problem:
        raise at.key(key).error(problem.removeprefix(f"{rule} "))
    return value


def _tier(data: dict, at: _At) -> int:
    value = data.get("tier")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4:
        raise at.key("tier").error("must be an integer from 1 to 4")
    return value


def _env_names(data: dict, key: str, at: _At) -> list[str]:
    at = at.key(key).into(data.get(key))
    names = _list(data.get(key) or [], at)
    for position, name in enumerate(names):
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise at.index(position).error("must be an environment variable name")
    return list(dict.fromkeys(names))


def _template(data: dict, at: _At) -> str | None:
    template = _text(data, "template", at)
    if template is None:
        return None
    configs = templates.configs_dir()
    if not validators.template_path_is_safe(template, configs) or templates.read_config(configs / template) is None:
        raise at.key("template").error(f"no workspace template {template!r} in CONFIGS_DIR")
    return template


def _template_runtime(template: str) -> str | None:
    runtime, _ = templates.template_runtime_and_model(templates.read_config(templates.configs_dir() / template) or {})
    return runtime


def _defaults(value, at: _At) -> dict:
    if value is None:
        return {}
    at = at.into(value)
    data = _mapping(value, at, DEFAULT_KEYS)
    return {
        "runtime": _runtime(data, at),
        "tier": _tier(data, at),
        "template": _template(data, at),
        "model": _text(data, "model", at, rule="model"),
    }


def _runtime(data: dict, at: _At) -> str | None:
    runtime = _text(data, "runtime", at, rule="runtime")
    if runtime == EXTERNAL_RUNTIME:
        raise at.key("runtime").error("external workspaces cannot come from an org template; create them with POST /workspaces")
    return runtime


def _org(value, at: _At, *, directory: str | None) -> OrgTemplate:
    data = _mapping(value, at, ORG_KEYS)
    name = _text(data, "name", at, required=True, rule="name")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise at.key("description").error("must be a string")
    defaults = _defaults(data.get("defaults"), at.key("defaults"))
    roots_at = at.key("workspaces").into(data.get("workspaces"))
    roots = _list(data.get("workspaces"), roots_at) if data.get("workspaces") is not None else []
    if not roots:
        raise roots_at.error("at least one workspace is required")
    count = [0]
    workspaces = [
        _workspace(node, roots_at.index(i), defaults=defaults, depth=0, count=count) for i, node in enumerate(roots)
    ]
    return OrgTemplate(
        dir=directory,
        name=name,
        description=description,
        required_env=_env_names(data, "required_env", at),
        recommended_env=_env_names(data, "recommended_env", at),
        workspaces=workspaces,
    )


def _workspace(value, at: _At, *, defaults: dict, depth: int, count: list[int]) -> OrgWorkspace:
    at = at.into(value)
    count[0] += 1
    if count[0] > MAX_WORKSPACES:
        raise at.error(f"an org has at most {MAX_WORKSPACES} workspaces")
    if depth >= MAX_DEPTH:
        raise at.error(f"an org is at most {MAX_DEPTH} levels deep")
    data = _mapping(value, at, WORKSPACE_KEYS)
    children_at = at.key("children").into(data.get("children"))
    children = _list(data.get("children") or [], children_at)
    runtime = _runtime(data, at) or defaults.get("runtime")
    template = _template(data, at) or defaults.get("template")
    if runtime is None and template and _template_runtime(template) == EXTERNAL_RUNTIME:
        raise at.key("template").error(f"{template!r} is an external workspace; set a runtime")
    return OrgWorkspace(
        name=_text(data, "name", at, required=True, rule="name"),
        role=_text(data, "role", at, rule="role"),
        tier=_tier(data, at) or defaults.get("tier", 0),
        runtime=runtime,
        template=template,
        model=_text(data, "model", at, rule="model") or defaults.get("model"),
        memories=_memories(data.get("initial_memories"), at.key("initial_memories"), root=depth == 0),
        schedules=_schedules(data.get("schedules"), at.key("schedules")),
        initial_prompt=_initial_prompt(data, at),
        children=[
            _workspace(child, children_at.index(i), defaults=defaults, depth=depth + 1, count=count)
            for i, child in enumerate(children)
        ],
    )


def _initial_prompt(data: dict, at: _At) -> str | None:
    if "initial_prompt" not in data:
        return None
    value = data["initial_prompt"]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise at.key("initial_prompt").error("must be a string")
    if len(value) > MAX_PROMPT_CHARS:
        raise at.key("initial_prompt").error(f"longer than {MAX_PROMPT_CHARS} characters")
    return value.strip()


def _schedules(value, at: _At) -> list[ScheduleInput]:
    at = at.into(value)
    try:
        return template_schedules(value, where=at.path or "schedules")
    except TemplateSchedulesError as exc:
        raise OrgTemplateError(f"{at.source}: {exc}") from None


def _memories(value, at: _At, *, root: bool) -> list[tuple[str, str]]:
    at = at.into(value)
    entries = _list(value or [], at)
    if len(entries) > MAX_MEMORIES_PER_WORKSPACE:
        raise at.error(f"at most {MAX_MEMORIES_PER_WORKSPACE} memories per workspace")
    memories = []
    for position, entry in enumerate(entries):
        entry_at = at.index(position).into(entry)
        data = _mapping(entry, entry_at, MEMORY_KEYS)
        scope = data.get("scope") or MemoryScope.LOCAL
        if not isinstance(scope, str) or scope.upper() not in MemoryScope.values:
            raise entry_at.key("scope").error("must be LOCAL, TEAM or GLOBAL")
        scope = scope.upper()
        if scope == MemoryScope.GLOBAL and not root:
            raise entry_at.key("scope").error("GLOBAL memories can only be given to a root workspace")
        content = _text(data, "content", entry_at, required=True)
        if len(content.encode()) > MAX_MEMORY_BYTES:
            raise entry_at.key("content").error(f"longer than {MAX_MEMORY_BYTES} bytes")
        memories.append((scope, content))
    return memories
