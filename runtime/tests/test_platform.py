"""PlatformClient against the fake platform: registration, token file, bearer, 401 retry."""

from __future__ import annotations

import asyncio
import stat

import pytest

from molecule_runtime.platform import PlatformClient, PlatformError

CARD = {"name": "Dev", "description": "dev", "version": "1.0.0", "url": "http://127.0.0.1:9999", "skills": []}


def test_register_saves_token_file_0600_and_later_calls_send_bearer(fake_platform, make_client, config_dir,
                                                                    workspace_id):
    async def scenario():
        client = make_client()
        try:
            assert client.token is None
            await client.register(url="http://127.0.0.1:9999", agent_card=CARD)
            await client.heartbeat({"active_tasks": 0})
            await client.update_card({**CARD, "description": "new"})
        finally:
            await client.aclose()
        return client

    client = asyncio.run(scenario())
    token_file = config_dir / ".auth_token"
    issued = next(iter(fake_platform.tokens[workspace_id]))
    assert token_file.read_text() == issued  # no trailing newline
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert client.token == issued

    [reg] = fake_platform.requests_to("/registry/register")
    assert "authorization" not in reg.headers  # nothing on disk yet
    assert reg.json == {"id": workspace_id, "url": "http://127.0.0.1:9999", "agent_card": CARD}
    [hb] = fake_platform.requests_to("/registry/heartbeat")
    assert hb.headers["authorization"] == f"Bearer {issued}"
    assert hb.json["workspace_id"] == workspace_id
    [uc] = fake_platform.requests_to("/registry/update-card")
    assert uc.headers["authorization"] == f"Bearer {issued}"
    assert uc.json == {"workspace_id": workspace_id, "agent_card": {**CARD, "description": "new"}}
    assert fake_platform.cards[workspace_id]["description"] == "new"


def test_reregister_sends_saved_token_and_keeps_file_when_none_issued(fake_platform, make_client, config_dir):
    async def scenario():
        first = make_client()
        await first.register(url="http://127.0.0.1:9999", agent_card=CARD)
        await first.aclose()
        second = make_client()  # a restarted runtime reads the file
        await second.register(url="http://127.0.0.1:9999", agent_card=CARD)
        await second.aclose()
        return first.token, second.token

    first_token, second_token = asyncio.run(scenario())
    assert first_token == second_token
    assert (config_dir / ".auth_token").read_text() == first_token
    regs = fake_platform.requests_to("/registry/register")
    assert len(regs) == 2
    assert regs[1].headers["authorization"] == f"Bearer {first_token}"


def test_discovery_sends_bearer_and_workspace_id(fake_platform, make_client, config_dir, workspace_id):
    (config_dir / ".auth_token").write_text("tok-on-disk\n")
    fake_platform.tokens[workspace_id] = {"tok-on-disk"}
    fake_platform.add_peer(workspace_id, "peer-1", name="QA")

    async def scenario():
        client = make_client()
        try:
            return await client.discover("peer-1")
        finally:
            await client.aclose()

    found = asyncio.run(scenario())
    assert found == {"id": "peer-1", "url": fake_platform.peer_url("peer-1"), "name": "QA"}
    [req] = fake_platform.requests_to("/registry/discover/peer-1")
    assert req.headers["authorization"] == "Bearer tok-on-disk"
    assert req.headers["x-workspace-id"] == workspace_id


def test_heartbeat_401_rereads_token_file_and_retries_once(fake_platform, make_client, config_dir, workspace_id):
    token_file = config_dir / ".auth_token"
    token_file.write_text("old-token")
    fake_platform.tokens[workspace_id] = {"rotated-token"}

    async def scenario():
        client = make_client()
        try:
            assert client.token == "old-token"
            token_file.write_text("rotated-token")  # the provisioner rotated it while we ran
            await client.heartbeat({"active_tasks": 0})
            return client.token
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == "rotated-token"
    beats = fake_platform.requests_to("/registry/heartbeat")
    assert [b.headers["authorization"] for b in beats] == ["Bearer old-token", "Bearer rotated-token"]
    assert len(fake_platform.heartbeats) == 1


def test_heartbeat_401_with_unchanged_token_retries_only_once_then_raises(fake_platform, make_client, config_dir,
                                                                         workspace_id):
    (config_dir / ".auth_token").write_text("bad-token")
    fake_platform.tokens[workspace_id] = {"good-token"}

    async def scenario():
        client = make_client()
        try:
            await client.heartbeat({"active_tasks": 0})
        finally:
            await client.aclose()

    with pytest.raises(PlatformError) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.status == 401
    assert "invalid workspace auth token" in str(excinfo.value)
    assert len(fake_platform.requests_to("/registry/heartbeat")) == 2


def test_platform_errors_carry_status_and_error_string(fake_platform, make_client):
    async def scenario():
        client = make_client()
        try:
            await client.discover("nobody")
        finally:
            await client.aclose()

    with pytest.raises(PlatformError) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.status == 404
    assert str(excinfo.value) == "HTTP 404: workspace not found"


def test_requests_cannot_leave_the_platform_url(fake_platform, make_client, config_dir):
    """The bearer token rides on every request(), so a full URL (say, a peer's) is refused before any I/O."""
    (config_dir / ".auth_token").write_text("platform-only-token")

    async def scenario():
        client = make_client()
        try:
            await client.request("POST", fake_platform.peer_url("elsewhere"), json={})
        finally:
            await client.aclose()

    with pytest.raises(ValueError, match="path under PLATFORM_URL"):
        asyncio.run(scenario())
    assert fake_platform.requests == []


def test_unreachable_platform_raises_platform_error(tmp_path, workspace_id):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def scenario():
        client = PlatformClient(platform_url=f"http://127.0.0.1:{port}", workspace_id=workspace_id,
                                config_dir=tmp_path, timeout=1.0)
        try:
            await client.heartbeat({})
        finally:
            await client.aclose()

    with pytest.raises(PlatformError) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.status is None
    assert "ConnectError" in str(excinfo.value)


def test_unwritable_config_dir_keeps_the_issued_token_in_memory(fake_platform, make_client, tmp_path, workspace_id):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # config_dir "inside" a regular file cannot be created

    async def scenario():
        client = make_client(config_dir=blocker / "configs")
        try:
            await client.register(url="http://127.0.0.1:9999", agent_card=CARD)
            await client.heartbeat({})
            return client.token
        finally:
            await client.aclose()

    token = asyncio.run(scenario())
    assert token == next(iter(fake_platform.tokens[workspace_id]))
    [hb] = fake_platform.requests_to("/registry/heartbeat")
    assert hb.headers["authorization"] == f"Bearer {token}"


def test_initial_token_seeds_the_token_file_of_an_external_agent(tmp_path):
    async def build(**kwargs):
        client = PlatformClient(platform_url="http://127.0.0.1:9", workspace_id="ws", config_dir=tmp_path, **kwargs)
        await client.aclose()
        return client

    seeded = asyncio.run(build(initial_token="from-connection-block"))
    assert seeded.token == "from-connection-block"
    token_file = tmp_path / ".auth_token"
    assert token_file.read_text() == "from-connection-block"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    token_file.write_text("rotated-by-platform")
    assert asyncio.run(build(initial_token="from-connection-block")).token == "rotated-by-platform"  # the file wins
