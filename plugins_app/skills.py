"""Workspace skills as versioned files, and the promotion loop (runtime §6, §6.4).

**Candidates.** After a successful ``commit_memory`` whose content is a JSON object with a truthy
``promote_to_skill``, the runtime records an activity row (``activity_type: skill_promotion``,
``method: memory/skill-promotion``, the memory packet as ``request_body``): a promotion candidate.
A candidate is pending until a :class:`~plugins_app.models.SkillCandidateDecision` exists for it
(promoted or dismissed, once: the decision's primary key is the candidate's id).

**Promotion** writes ``skills/<name>/SKILL.md`` (front matter + the procedure) and, when given,
``skills/<name>/scripts/<name>.py`` into the workspace's ``/configs`` through its file store, and
lists the skill in ``config.yaml``'s ``skills:``. The runtime's skills watcher loads the new folder,
rebuilds its Agent Card and posts ``/registry/update-card`` (``AGENT_CARD_UPDATED``), so peers see
the skill in discovery. An operator (admin token, staff session) may promote; a workspace token
only with the id of an *approved* approval request of that workspace (the agent asked first).

**Versions.** Every promotion, edit, removal and rollback is a ``workspace_skill_versions`` row
holding the skill folder's files after the change (``{}`` for a removal) and one event
(``SKILL_PROMOTED``, ``SKILL_UPDATED``, ``SKILL_REMOVED``, ``SKILL_ROLLED_BACK``). The first change of
a skill that already had files (from a template) first records them as a ``baseline`` version, so
a rollback can always return to what was there. A rollback writes an earlier version's files as a
new version: history is never rewritten. Changes of one workspace are serialised by locking its row.
"""

from __future__ import annotations

import re

import yaml
from django.db import IntegrityError, transaction
from django.db.models import Max

from activity.events import emit
from activity.models import ActivityLog, ApprovalRequest
from molecule_site.errors import ApiError
from plugins_app.models import CandidateDecision, SkillAction, SkillCandidateDecision, SkillVersion
from workspaces import files, selectors
from workspaces.models import Workspace
from workspaces.templates import CONFIG_FILE, MAX_FILE_BYTES, rel_path_is_valid

SKILL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CANDIDATE_TYPE = "skill_promotion"
CANDIDATE_METHOD = "memory/skill-promotion"
SKILL_FILE = "SKILL.md"
MAX_SKILL_FILES = 50
CANDIDATE_LIST_LIMIT = 50
EVENTS = {
    SkillAction.PROMOTED: "SKILL_PROMOTED", SkillAction.EDITED: "SKILL_UPDATED",
    SkillAction.REMOVED: "SKILL_REMOVED", SkillAction.ROLLED_BACK: "SKILL_ROLLED_BACK",
}


def _workspace(workspace_id) -> Workspace:
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


def check_skill_name(name) -> str:
    if not isinstance(name, str) or not SKILL_NAME_RE.match(name):
        raise ApiError("invalid skill name: lowercase letters, digits and '-', at most 64")
    return name


def slug(text) -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "-", str(text or "").lower()).strip("-")[:64].strip("-")
    return cleaned or "promoted-skill"


# --- reading -------------------------------------------------------------------------------------------

def _folder(skill: str) -> str:
    return f"skills/{skill}"


def _skill_files(view: files.ConfigFiles, skill: str) -> dict[str, str]:
    folder = _folder(skill)
    out = {}
    for path in view.files(folder):
        text = view.read_text(path)
        if text is not None:
            out[path[len(folder) + 1:]] = text
    return out


def _latest(workspace_id, skill: str) -> SkillVersion | None:
    return SkillVersion.objects.filter(workspace_id=workspace_id, skill=skill).order_by("-version").first()


def version_dict(row: SkillVersion, *, with_files: bool = False) -> dict:
    out = {"skill": row.skill, "version": row.version, "action": row.action, "actor": row.actor,
           "restored_from": row.restored_from, "candidate_id": str(row.candidate_id) if row.candidate_id else None,
           "created_at": row.created_at, "files": sorted(row.files)}
    if with_files:
        out["content"] = row.files
    return out


def skills_list(*, workspace_id) -> list[dict]:
    """The workspace's skills: what its Agent Card announces (the runtime loaded them), joined with
    the folders of ``/configs/skills`` and their current version."""
    workspace = _workspace(workspace_id)
    card = workspace.agent_card if isinstance(workspace.agent_card, dict) else {}
    announced = {str(s.get("id") or s.get("name")): s for s in card.get("skills") or [] if isinstance(s, dict)}
    view = files.ConfigFiles(workspace)
    try:
        folders = {e["path"].split("/")[1] for e in view.list("skills", 1) if e["dir"]}
    except ApiError:
        folders = set()
    versions = dict(SkillVersion.objects.filter(workspace=workspace).values("skill").annotate(v=Max("version"))
                    .values_list("skill", "v"))
    out = []
    for skill_id in sorted(set(announced) | folders):
        entry = announced.get(skill_id, {})
        out.append({
            "id": skill_id, "name": entry.get("name") or skill_id, "description": entry.get("description") or "",
            "tags": entry.get("tags") or [], "examples": entry.get("examples") or [],
            "loaded": skill_id in announced, "in_files": skill_id in folders, "version": versions.get(skill_id),
        })
    return out


def skill_get(*, workspace_id, skill) -> dict:
    workspace = _workspace(workspace_id)
    check_skill_name(skill)
    content = _skill_files(files.ConfigFiles(workspace), skill)
    history = SkillVersion.objects.filter(workspace=workspace, skill=skill).order_by("-version")
    if not content and not history.exists():
        raise ApiError("skill not found", status=404)
    return {"skill": skill, "files": content, "versions": [version_dict(v) for v in history]}


def candidate_dict(row: ActivityLog) -> dict:
    packet = row.request_body if isinstance(row.request_body, dict) else {}
    return {"id": str(row.id), "summary": row.summary, "created_at": row.created_at, "packet": packet,
            "suggested_name": slug(packet.get("skill_name") or packet.get("name") or packet.get("title")
                                   or row.summary)}


def _candidates(workspace_id):
    return ActivityLog.objects.filter(workspace_id=workspace_id, activity_type=CANDIDATE_TYPE, method=CANDIDATE_METHOD)


def candidates_pending(*, workspace_id) -> list[dict]:
    """``GET /workspaces/:id/skills/candidates``: undecided candidates, newest first."""
    workspace = _workspace(workspace_id)
    rows = _candidates(workspace.id).filter(skill_decision__isnull=True).order_by("-created_at")
    return [candidate_dict(row) for row in rows[:CANDIDATE_LIST_LIMIT]]


# --- writing ----------------------------------------------------------------------------------------------

def _config_skills(view: files.ConfigFiles, store, skill: str, *, present: bool) -> None:
    """Add ``skill`` to (or drop it from) ``config.yaml``'s ``skills:`` list, when that changes it."""
    text = view.read_text(CONFIG_FILE) if view.own else None
    try:
        config = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        raise ApiError("config.yaml is not valid YAML; fix it before changing skills", status=409) from None
    config = config if isinstance(config, dict) else {}
    listed = [str(s) for s in config.get("skills") or [] if isinstance(s, (str, int))]
    if (skill in listed) == present:
        return
    config["skills"] = listed + [skill] if present else [s for s in listed if s != skill]
    store.write(CONFIG_FILE, yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode())


def _check_files(content) -> dict[str, str]:
    if not isinstance(content, dict) or not content:
        raise ApiError("files must be a non-empty object of path → text")
    if len(content) > MAX_SKILL_FILES:
        raise ApiError(f"too many files ({len(content)}), max {MAX_SKILL_FILES}")
    for rel, text in content.items():
        if not rel_path_is_valid(rel):
            raise ApiError("invalid path")
        if not isinstance(text, str):
            raise ApiError("invalid request body")
        if len(text.encode()) > MAX_FILE_BYTES:
            raise ApiError("file too large", status=413, path=rel, max_bytes=MAX_FILE_BYTES)
    if SKILL_FILE not in content:
        raise ApiError("a skill needs a SKILL.md")
    return content


def _apply(workspace: Workspace, skill: str, content: dict[str, str], action: str, *, actor: str,
           candidate: ActivityLog | None = None, restored_from: int | None = None) -> SkillVersion:
    """Write the skill folder (``{}``: remove it) and record the version. Call inside a transaction
    that holds the workspace's row lock."""
    store = files.own_configs(workspace)
    view = files.ConfigFiles(workspace, store)
    latest = _latest(workspace.id, skill)
    number = latest.version if latest else 0
    if latest is None:
        before = _skill_files(view, skill)
        if before:
            number = 1
            SkillVersion.objects.create(workspace=workspace, skill=skill, version=1, action=SkillAction.BASELINE,
                                        files=before, actor=actor)
    folder = _folder(skill)
    try:
        if content:
            _config_skills(view, store, skill, present=True)  # listed first: the watcher then loads it
            stale = set(_skill_files(view, skill)) - set(content)
            # SKILL.md last and stale files after it: a reload that catches the change half-way
            # never sees the skill vanish, nor the new SKILL.md beside old scripts
            for rel in sorted(content, key=lambda r: (r == SKILL_FILE, r)):
                store.write(f"{folder}/{rel}", content[rel].encode())
            for rel in sorted(stale):
                store.delete(f"{folder}/{rel}")
        else:
            store.delete(folder)
            _config_skills(view, store, skill, present=False)
    except OSError as exc:
        raise ApiError(f"failed to write skill: {exc.strerror or 'write failed'}", status=500) from None
    row = SkillVersion.objects.create(workspace=workspace, skill=skill, version=number + 1, action=action,
                                      files=content, actor=actor, candidate=candidate, restored_from=restored_from)
    emit(EVENTS[action], workspace.id, {"skill": skill, "version": row.version, "actor": actor,
                                        **({"restored_from": restored_from} if restored_from else {})})
    return row


def _locked(workspace_id) -> Workspace:
    workspace = _workspace(workspace_id)
    return Workspace.objects.select_for_update().get(pk=workspace.id)


def skill_markdown(*, name: str, description: str, instructions: str, tags: list[str]) -> str:
    front = yaml.safe_dump({"name": name, "description": description, "tags": tags}, sort_keys=False,
                           allow_unicode=True)
    return f"---\n{front}---\n{instructions.strip()}\n"


def procedure_text(packet: dict, summary: str) -> str:
    """The steps a candidate's memory packet records, as the body of its SKILL.md."""
    for key in ("procedure", "steps", "workflow", "instructions", "content", "what changed"):
        value = packet.get(key)
        if isinstance(value, list) and value:
            return "\n".join(f"{i}. {step}" for i, step in enumerate(value, 1))
        if isinstance(value, str) and value.strip():
            return value
    return summary or "Repeat the procedure recorded in memory."


def _check_approval(workspace: Workspace, approval_id) -> None:
    ok = False
    if isinstance(approval_id, str) and approval_id:
        try:
            ok = ApprovalRequest.objects.filter(pk=approval_id, workspace=workspace, status="approved").exists()
        except Exception:  # noqa: BLE001 - a malformed id is simply not an approval
            ok = False
    if not ok:
        raise ApiError("promoting a skill with a workspace token needs the id of an approved approval request",
                       status=403)


def candidate_promote(*, workspace_id, candidate_id, body: dict, actor: str, operator: bool) -> dict:
    """``POST /workspaces/:id/skills/candidates/:cid/promote {name?, description?, instructions?,
    tool_script?, approval_id?}``."""
    workspace = _workspace(workspace_id)
    if not operator:
        _check_approval(workspace, body.get("approval_id"))
    candidate = _candidates(workspace.id).filter(pk=selectors.as_uuid(candidate_id)).first() \
        if selectors.as_uuid(candidate_id) else None
    if candidate is None:
        raise ApiError("skill promotion candidate not found", status=404)
    info = candidate_dict(candidate)
    packet = info["packet"]
    name = check_skill_name(body.get("name") or info["suggested_name"])
    description = body.get("description") or packet.get("description") or info["summary"] or ""
    instructions = body.get("instructions") or procedure_text(packet, info["summary"] or "")
    tool_script = body.get("tool_script")
    if not all(isinstance(v, str) for v in (description, instructions)) or not isinstance(tool_script, (str, type(None))):
        raise ApiError("invalid request body")
    content = {SKILL_FILE: skill_markdown(name=str(body.get("title") or name), description=description,
                                          instructions=instructions, tags=["promoted"])}
    if tool_script:
        content[f"scripts/{name.replace('-', '_')}.py"] = tool_script
    _check_files(content)
    try:
        with transaction.atomic():
            locked = _locked(workspace.id)
            SkillCandidateDecision.objects.create(candidate=candidate, workspace=locked, skill=name,
                                                  decision=CandidateDecision.PROMOTED, decided_by=actor)
            row = _apply(locked, name, content, SkillAction.PROMOTED, actor=actor, candidate=candidate)
    except IntegrityError:
        raise ApiError("skill promotion candidate already decided", status=409) from None
    return {"status": "promoted", **version_dict(row)}


def candidate_dismiss(*, workspace_id, candidate_id, actor: str) -> dict:
    workspace = _workspace(workspace_id)
    parsed = selectors.as_uuid(candidate_id)
    candidate = _candidates(workspace.id).filter(pk=parsed).first() if parsed else None
    if candidate is None:
        raise ApiError("skill promotion candidate not found", status=404)
    try:
        with transaction.atomic():
            SkillCandidateDecision.objects.create(candidate=candidate, workspace=workspace,
                                                  decision=CandidateDecision.DISMISSED, decided_by=actor)
            emit("SKILL_CANDIDATE_DISMISSED", workspace.id, {"candidate_id": str(candidate.id), "actor": actor})
    except IntegrityError:
        raise ApiError("skill promotion candidate already decided", status=409) from None
    return {"status": "dismissed", "candidate_id": str(candidate.id)}


@transaction.atomic
def skill_update(*, workspace_id, skill, content, actor: str) -> dict:
    """``PUT /workspaces/:id/skills/:name {files: {rel: text}}``: a new version of the whole folder."""
    check_skill_name(skill)
    content = _check_files(content)
    workspace = _locked(workspace_id)
    return {"status": "saved", **version_dict(_apply(workspace, skill, content, SkillAction.EDITED, actor=actor))}


@transaction.atomic
def skill_remove(*, workspace_id, skill, actor: str) -> dict:
    check_skill_name(skill)
    workspace = _locked(workspace_id)
    if not _skill_files(files.ConfigFiles(workspace), skill):
        raise ApiError("skill not found", status=404)
    return {"status": "removed", **version_dict(_apply(workspace, skill, {}, SkillAction.REMOVED, actor=actor))}


@transaction.atomic
def skill_rollback(*, workspace_id, skill, version=None, actor: str) -> dict:
    """``POST /workspaces/:id/skills/:name/rollback {version?}``: restore an earlier version (default:
    the one before the latest) as a new version."""
    check_skill_name(skill)
    workspace = _locked(workspace_id)
    latest = _latest(workspace.id, skill)
    if latest is None:
        raise ApiError("skill has no history", status=404)
    if version is None:
        version = latest.version - 1
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError("version must be an integer")
    target = SkillVersion.objects.filter(workspace=workspace, skill=skill, version=version).first()
    if target is None or version == latest.version:
        raise ApiError("no such earlier version", status=404)
    row = _apply(workspace, skill, dict(target.files), SkillAction.ROLLED_BACK, actor=actor, restored_from=version)
    return {"status": "rolled_back", **version_dict(row)}
