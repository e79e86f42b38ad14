"""a2a-sdk's own client talks to the runtime, in both protocol generations (0.3 and 1.0)."""

import uuid

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import AgentCard, GetTaskRequest, Message, Part, Role, SendMessageRequest


def _only(card: AgentCard, version: str) -> AgentCard:
    copy = AgentCard()
    copy.CopyFrom(card)
    keep = [i for i in card.supported_interfaces if i.protocol_version == version]
    del copy.supported_interfaces[:]
    copy.supported_interfaces.extend(keep)
    return copy


def _request(text: str) -> SendMessageRequest:
    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex,
                                              parts=[Part(text=text)]))


async def _collect(client, text):
    events = []
    async for event in client.send_message(_request(text)):
        events.append(event)
    return events


def _final_text(events) -> str:
    for event in reversed(events):
        if event.HasField("task") and event.task.status.message.parts:
            return event.task.status.message.parts[0].text
        if event.HasField("status_update") and event.status_update.status.message.parts:
            return event.status_update.status.message.parts[0].text
        if event.HasField("message"):
            return event.message.parts[0].text
    raise AssertionError(f"no reply in {events}")


def _task_id(events) -> str:
    for event in events:
        for field in ("task", "status_update", "message"):
            if event.HasField(field):
                value = getattr(event, field)
                return value.id if field == "task" else value.task_id
    raise AssertionError("no task id")


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["1.0", "0.3"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_sdk_client_gets_the_echo_reply(echo_runtime, version, streaming):
    async with httpx.AsyncClient(timeout=10) as http:
        card = await A2ACardResolver(http, echo_runtime.url).get_agent_card()
        factory = ClientFactory(ClientConfig(streaming=streaming, httpx_client=http))
        client = factory.create(_only(card, version))
        events = await _collect(client, f"hello {version}")
        assert _final_text(events) == f"echo: hello {version}"
        task_id = _task_id(events)
        task = await client.get_task(GetTaskRequest(id=task_id))
        assert task.artifacts[0].parts[0].text == f"echo: hello {version}"
        await client.close()


@pytest.mark.anyio
async def test_sdk_resolver_reads_the_legacy_card_path(echo_runtime):
    async with httpx.AsyncClient(timeout=10) as http:
        card = await A2ACardResolver(http, echo_runtime.url).get_agent_card(
            relative_card_path="/.well-known/agent.json")
    assert card.name == "Echo Agent"
