"""Platform instructions (spec §19 ``platform_instructions``): rules an operator writes once and
every agent reads first in its system prompt — global ones for the whole platform, workspace ones
for a single workspace. The original reserves a ``team`` scope; it is refused here until teams
have a rule of their own (``TEAM_RESERVED``)."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from workspaces.models import Workspace

MAX_TITLE = 200
MAX_CONTENT = 8192  # characters of Markdown per instruction: every agent's prompt carries them
TEAM_RESERVED = "team scope is reserved and not supported yet"


class InstructionScope(models.TextChoices):
    GLOBAL = "global", "Global"
    WORKSPACE = "workspace", "Workspace"


class PlatformInstruction(models.Model):
    """One Markdown rule. ``workspace`` is set exactly for the ``workspace`` scope; among the rules of
    one scope a higher ``priority`` comes first in the resolved text (then the oldest first)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=16, choices=InstructionScope.choices, default=InstructionScope.GLOBAL)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="platform_instructions")
    title = models.CharField(max_length=MAX_TITLE)
    content = models.TextField(help_text=f"Markdown, at most {MAX_CONTENT} characters.")
    priority = models.IntegerField(default=0, help_text="Higher first within its scope.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "platform_instructions"
        ordering = ["scope", "-priority", "created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=InstructionScope.values),
                                   name="platform_instructions_scope_valid"),
            models.CheckConstraint(
                condition=(models.Q(scope=InstructionScope.GLOBAL, workspace__isnull=True)
                           | models.Q(scope=InstructionScope.WORKSPACE, workspace__isnull=False)),
                name="platform_instructions_workspace_iff_workspace_scope",
                violation_error_message="a workspace instruction names its workspace; a global one names none",
            ),
            models.CheckConstraint(condition=LessThanOrEqual(Length("content"), MAX_CONTENT),
                                   name="platform_instructions_content_bounded",
                                   violation_error_message=f"content is at most {MAX_CONTENT} characters"),
        ]

    def clean(self):
        if "\n" in self.title or "\r" in self.title:
            raise ValidationError({"title": "the title is one line"})

    def __str__(self):
        return f"{self.title} ({self.scope})"
