from google.protobuf.json_format import MessageToDict

from molecule_runtime.card import build_agent_card, card_dict
from molecule_runtime.config import load_config
from molecule_runtime.skills import load_skills

from .conftest import write_config, write_skill


def _config(tmp_path):
    write_config(tmp_path, """
        name: Researcher
        description: Finds things
        version: 1.2.3
        runtime: echo
        skills: [web-research]
        a2a: {port: 8123, streaming: true, push_notifications: false}
    """)
    write_skill(tmp_path, "web-research", """
        name: Web research
        description: Searches the web
        tags: [search, web]
        examples: ["find X"]
    """)
    return load_config(tmp_path, env={})


def test_served_card_has_config_fields_skills_and_both_interfaces(tmp_path):
    config = _config(tmp_path)
    card = MessageToDict(build_agent_card(config, "http://10.0.0.5:8123", load_skills(tmp_path, config.skills)))
    assert card["name"] == "Researcher"
    assert card["description"] == "Finds things"
    assert card["version"] == "1.2.3"
    assert card["capabilities"] == {"streaming": True, "pushNotifications": False}
    assert card["defaultInputModes"] == ["text/plain", "application/json"]
    assert card["defaultOutputModes"] == ["text/plain", "application/json"]
    assert {(i["url"], i["protocolVersion"]) for i in card["supportedInterfaces"]} == {
        ("http://10.0.0.5:8123", "1.0"), ("http://10.0.0.5:8123", "0.3")}
    assert card["skills"] == [{"id": "web-research", "name": "Web research", "description": "Searches the web",
                               "tags": ["search", "web"], "examples": ["find X"]}]


def test_description_falls_back_to_name(tmp_path):
    write_config(tmp_path, "name: Solo\n")
    config = load_config(tmp_path, env={})
    assert build_agent_card(config, "http://h:1").description == "Solo"
    assert card_dict(config, "http://h:1")["description"] == "Solo"


def test_registration_card_dict(tmp_path):
    config = _config(tmp_path)
    skills = load_skills(tmp_path, config.skills)
    assert card_dict(config, "http://10.0.0.5:8123", skills) == {
        "name": "Researcher", "description": "Finds things", "version": "1.2.3", "url": "http://10.0.0.5:8123",
        "skills": [{"id": "web-research", "name": "Web research", "description": "Searches the web",
                    "tags": ["search", "web"]}],
        "capabilities": {"streaming": True, "pushNotifications": False},
        "configuration_status": "ready",
    }


def test_card_before_setup_uses_skill_stubs_and_reports_setup_errors(tmp_path):
    config = _config(tmp_path)
    card = card_dict(config, "http://h:1", None, configuration_error="RuntimeError: no key")
    assert card["skills"] == [{"id": "web-research", "name": "web-research", "description": "web-research", "tags": []}]
    assert card["configuration_status"] == "not_configured"
    assert card["configuration_error"] == "RuntimeError: no key"
