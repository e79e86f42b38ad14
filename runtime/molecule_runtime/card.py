"""Agent Card from config + skills (spec/runtime.md §4.1).

Two forms: the a2a-sdk `AgentCard` served at `/.well-known/agent-card.json` (and the 0.3 path
`/.well-known/agent.json`), and the plain dict sent to `/registry/register` and
`/registry/update-card` (what the platform stores and peers see).
"""

from __future__ import annotations

from typing import Iterable

from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

from .config import WorkspaceConfig
from .skills import LoadedSkill

IO_MODES = ["text/plain", "application/json"]


def _skill_entries(config: WorkspaceConfig, skills: Iterable[LoadedSkill] | None) -> list[dict]:
    if skills is None:  # before setup: stubs from config (spec §4.1 [later])
        return [{"id": s, "name": s, "description": s, "tags": [], "examples": []} for s in config.skills]
    return [
        {"id": s.metadata.id, "name": s.metadata.name, "description": s.metadata.description,
         "tags": list(s.metadata.tags), "examples": list(s.metadata.examples)}
        for s in skills
    ]


def build_agent_card(config: WorkspaceConfig, url: str, skills: Iterable[LoadedSkill] | None = None) -> AgentCard:
    """The served card (a2a-sdk 1.x types: `supported_interfaces`, not `supported_protocols`)."""
    return AgentCard(
        name=config.name,
        description=config.description or config.name,
        version=config.version,
        # one endpoint speaks both generations: 1.0 first, then 0.3 (which also makes the SDK
        # add the legacy top-level `url`/`preferredTransport` fields to the served JSON)
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=config.a2a.streaming,
                                       push_notifications=config.a2a.push_notifications),
        default_input_modes=IO_MODES,
        default_output_modes=IO_MODES,
        skills=[AgentSkill(**entry) for entry in _skill_entries(config, skills)],
    )


def card_dict(config: WorkspaceConfig, url: str, skills: Iterable[LoadedSkill] | None = None,
              *, configuration_error: str | None = None) -> dict:
    """The registration/heartbeat form of the card."""
    card = {
        "name": config.name,
        "description": config.description or config.name,
        "version": config.version,
        "url": url,
        "skills": [{k: e[k] for k in ("id", "name", "description", "tags")} for e in _skill_entries(config, skills)],
        "capabilities": {"streaming": config.a2a.streaming, "pushNotifications": config.a2a.push_notifications},
        "configuration_status": "not_configured" if configuration_error else "ready",
    }
    if configuration_error:
        card["configuration_error"] = configuration_error
    return card
