"""Plugin governance and versioned skills (spec platform-api §18, §19; runtime §6).

- :class:`OrgPluginAllowlist`: the plugins an org (a root workspace and everything below it) may
  install. An org without rows may install any plugin of the registry.
- :class:`SkillVersion`: every promotion, edit, removal or rollback of a workspace skill, with the
  files it left (``skills/<name>/…``). The files in the workspace's ``/configs`` are the live copy;
  these rows are the history a rollback restores from.
- :class:`SkillCandidateDecision`: what became of a promotion candidate (an ``activity_logs`` row of
  type ``skill_promotion`` the runtime recorded): promoted or dismissed, once.
"""

from __future__ import annotations

import uuid

from django.db import models

from activity.models import ActivityLog
from django.db.models import Q
from django.db.models.functions import Now


class OrgPluginAllowlist(models.Model):
    """One plugin an org root allows its workspaces to install (``org_plugin_allowlist``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="plugin_allowlist",
                            help_text="The org's root workspace (no parent).")
    plugin_name = models.CharField(max_length=100)
    enabled_by = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "org_plugin_allowlist"
        ordering = ["plugin_name"]
        verbose_name = "org plugin allowlist entry"
        verbose_name_plural = "org plugin allowlist"
        constraints = [models.UniqueConstraint(fields=["org", "plugin_name"], name="org_plugin_allowlist_unique")]

    def __str__(self) -> str:
        return f"{self.plugin_name} ({self.org_id})"


class SkillAction(models.TextChoices):
    BASELINE = "baseline"  # the files as they were before the first recorded change
    PROMOTED = "promoted"
    EDITED = "edited"
    REMOVED = "removed"
    ROLLED_BACK = "rolled_back"


class SkillVersion(models.Model):
    """One version of a workspace skill: the files of ``skills/<skill>/`` after a change.

    ``files`` maps paths relative to the skill folder to their text; a removal keeps ``{}``.
    Versions count from 1 per (workspace, skill); the highest is what the workspace has now.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="skill_versions")
    skill = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=20, choices=SkillAction.choices)
    files = models.JSONField(default=dict, db_default={})
    actor = models.TextField(null=True, blank=True)
    candidate = models.ForeignKey("activity.ActivityLog", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "workspace_skill_versions"
        ordering = ["workspace", "skill", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "skill", "version"], name="skill_version_unique"),
            models.CheckConstraint(condition=Q(action__in=SkillAction.values), name="skill_version_action_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.skill} v{self.version} ({self.action})"


class CandidateDecision(models.TextChoices):
    PROMOTED = "promoted"
    DISMISSED = "dismissed"


class SkillCandidateDecision(models.Model):
    """The decision on one promotion candidate; the primary key makes it once per candidate."""

    candidate = models.OneToOneField("activity.ActivityLog", primary_key=True, on_delete=models.CASCADE,
                                     related_name="skill_decision", db_column="activity_id")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=20, choices=CandidateDecision.choices)
    skill = models.CharField(max_length=64, null=True, blank=True)
    decided_by = models.TextField(null=True, blank=True)
    decided_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "skill_candidate_decisions"
        ordering = ["-decided_at"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=CandidateDecision.values), name="skill_decision_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.skill or ''}".strip()


class PendingCandidateManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(activity_type="skill_promotion", method="memory/skill-promotion",
                                             skill_decision__isnull=True)


class SkillPromotionCandidate(ActivityLog):
    """A pending promotion candidate (an ``activity_logs`` row): what the operator admin promotes or dismisses."""

    objects = PendingCandidateManager()

    class Meta:
        proxy = True
        ordering = ["-created_at"]
        verbose_name = "skill promotion candidate"
