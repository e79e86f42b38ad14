"""Fragments of the canvas's surfaces: the create dialog's form, the template palette, the empty
state's gallery and the settings drawer's secrets list (canvas spec §2.2, §4.1, §4.2, §4.4).

Reads only: every write these surfaces offer goes from the page's JS to the platform API
(``POST /workspaces``, ``POST /org/import``, ``PUT /settings/secrets`` …), so the fragments stay
plain renderings of what the selectors say. Secret values are never read here, only key names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.shortcuts import render

from secrets_app.selectors import global_secret_listing
from workspaces import org_templates, templates
from workspaces.canvas import cards as canvas_cards
from workspaces.canvas.views import operator_page

TIERS = ((1, "Sandboxed"), (2, "Standard"), (3, "Privileged"), (4, "Full Access"))  # canvas spec §1.3
DEFAULT_TIER = 3  # the self-hosted default (spec §1.3)
MAX_PALETTE_SKILLS = 3
# How the secrets list groups keys: the services an operator recognises, by key prefix.
SECRET_GROUPS = (
    ("GitHub", re.compile(r"^(GITHUB|GH)_")),
    ("Anthropic", re.compile(r"^ANTHROPIC_")),
    ("OpenAI", re.compile(r"^OPENAI_")),
    ("OpenRouter", re.compile(r"^OPENROUTER_")),
    ("Google", re.compile(r"^(GOOGLE|GEMINI)_")),
)
OTHER_GROUP = "Other"


@dataclass(frozen=True)
class ParentOption:
    id: str
    label: str  # "T<n> · name", indented by depth so the tree reads as one


def _template_items() -> list[dict]:
    """``GET /templates`` items plus what a card shows: skill chips and the keys preflight checks."""
    items = []
    for item in templates.template_list():
        skills = item.get("skills") or []
        items.append({
            **item,
            "shown_skills": skills[:MAX_PALETTE_SKILLS],
            "more_skills": max(0, len(skills) - MAX_PALETTE_SKILLS),
            "required_env_csv": ",".join(item.get("required_env") or []),
        })
    return items


def _org_items() -> list[dict]:
    return [
        {**org, "required_env_csv": ",".join(org["required_env"]),
         "recommended_env_csv": ",".join(org["recommended_env"])}
        for org in org_templates.org_template_list()
    ]


def _parent_options() -> list[ParentOption]:
    options = []
    for root in canvas_cards.card_forest():
        for card in root.walk():
            indent = "\u2003" * card.depth  # em spaces: <option> text keeps them, unlike plain spaces
            options.append(ParentOption(card.id, f"{indent}T{card.workspace.tier} · {card.workspace.name}"))
    return options


@operator_page
def create_form(request):
    """The Create Workspace form, with the templates and the possible parents as they are now.
    ``?parent=<id>`` preselects a parent (the context menu's "add to team" path)."""
    return render(request, "canvas/surfaces/_create_form.html", {
        "templates": _template_items(),
        "parents": _parent_options(),
        "parent_id": request.GET.get("parent", ""),
        "tiers": TIERS,
        "default_tier": DEFAULT_TIER,
    })


@operator_page
def palette(request):
    """The template palette drawer's content: templates to deploy, then org templates."""
    return render(request, "canvas/surfaces/_palette.html", {
        "templates": _template_items(),
        "orgs": _org_items(),
    })


@operator_page
def welcome(request):
    """The empty state's gallery: the same templates and orgs, laid out as a first-run page."""
    return render(request, "canvas/surfaces/_welcome.html", {
        "templates": _template_items(),
        "orgs": _org_items(),
    })


def _group(key: str) -> str:
    for name, pattern in SECRET_GROUPS:
        if pattern.match(key):
            return name
    return OTHER_GROUP


@operator_page
def secrets_list(request):
    """Global secrets by service group: key names and dates, never a value."""
    groups: dict[str, list[dict]] = {}
    for item in global_secret_listing():
        groups.setdefault(_group(item["key"]), []).append(item)
    order = [name for name, _ in SECRET_GROUPS] + [OTHER_GROUP]
    return render(request, "canvas/surfaces/_secrets.html", {
        "groups": [(name, groups[name]) for name in order if name in groups],
        "total": sum(len(rows) for rows in groups.values()),
    })
