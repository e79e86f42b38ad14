"""Chat attachments (spec §14 ``/chat/uploads``, ``/chat/download``) through the host-directory
file store: round trip, limits, names, path safety, auth, the ASGI body cap, and notify."""

import asyncio
import io
import json
import os
import re

import pytest

from activity.models import ActivityLog
from molecule_site.handler import MoleculeASGIHandler
from registry.tokens import token_mint
from workspaces import chat, filestores
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner

pytestmark = pytest.mark.django_db

ADMIN = "admin-token-for-chat-tests"
MIB = 1024 * 1024
STORED = re.compile(r"workspace:/workspace/\.molecule/chat-uploads/([0-9a-f]{32})-(.+)")


@pytest.fixture(autouse=True)
def environment(settings, tmp_path):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.MOLECULE_HOME = tmp_path / "home"
    settings.MOLECULE_PROVISIONER = "local"  # a backend whose workspaces have files (the suite pins none)
    get_provisioner.cache_clear()


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Researcher", status=WorkspaceStatus.ONLINE)


@pytest.fixture
def token(workspace):
    return token_mint(workspace=workspace)[1]


def uploads_dir(workspace):
    return filestores.host_root_dir(workspace.id, "/workspace") / ".molecule" / "chat-uploads"


def stored_files(workspace):
    directory = uploads_dir(workspace)
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def named(data: bytes, name: str):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def upload(client, workspace, token):
    def call(*handles, bearer=token, workspace_id=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
        return client.post(f"/workspaces/{workspace_id or workspace.id}/chat/uploads", {"files": list(handles)},
                           **headers)

    return call


@pytest.fixture
def download(client, workspace, token):
    def call(path, bearer=token):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
        return client.get(f"/workspaces/{workspace.id}/chat/download", {"path": path}, **headers)

    return call


def body(response) -> bytes:
    return b"".join(response.streaming_content)


# --- round trip ------------------------------------------------------------------------------------

def test_upload_then_download_gives_back_the_same_bytes(upload, download, workspace):
    data = bytes(range(256)) * 1000
    response = upload(named(data, "data.bin"))
    assert response.status_code == 200
    [item] = response.json()["files"]
    prefix, name = STORED.fullmatch(item["uri"]).groups()
    assert (name, item["name"], item["size"]) == ("data.bin", "data.bin", len(data))
    assert stored_files(workspace) == [f"{prefix}-data.bin"]

    fetched = download(item["uri"])
    assert fetched.status_code == 200
    assert body(fetched) == data
    assert fetched["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert fetched["Content-Length"] == str(len(data))
    assert fetched["X-Content-Type-Options"] == "nosniff"


def test_download_accepts_the_path_without_the_scheme_and_guesses_the_type(upload, download):
    [item] = upload(named(b"%PDF-1.4", "report.pdf")).json()["files"]
    fetched = download(item["uri"].removeprefix("workspace:"))
    assert (fetched.status_code, fetched["Content-Type"], body(fetched)) == (200, "application/pdf", b"%PDF-1.4")


def test_several_files_are_stored_apart_even_with_the_same_name(upload, workspace):
    response = upload(named(b"one", "notes.txt"), named(b"two", "notes.txt"), named(b"{}", "a.json"))
    items = response.json()["files"]
    assert [(i["name"], i["size"]) for i in items] == [("notes.txt", 3), ("notes.txt", 3), ("a.json", 2)]
    assert len({i["uri"] for i in items}) == 3
    assert len(stored_files(workspace)) == 3


def test_the_mime_type_is_the_clients_else_guessed_from_the_name(client, workspace, token):
    boundary = "XyZ"
    parts = [
        ("files", "picture.png", "image/png", b"png"),
        ("files", "table.csv", None, b"a,b"),
        ("files", "blob", None, b"?"),
    ]
    raw = b""
    for field, name, mime, data in parts:
        raw += f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'.encode()
        raw += f"Content-Type: {mime}\r\n".encode() if mime else b""
        raw += b"\r\n" + data + b"\r\n"
    raw += f"--{boundary}--\r\n".encode()
    response = client.post(f"/workspaces/{workspace.id}/chat/uploads", raw,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [i["mimeType"] for i in response.json()["files"]] == ["image/png", "text/csv", "application/octet-stream"]


# --- names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\boot.ini", "boot.ini"),
    (".bashrc", "bashrc"),
    ("...", "file"),
    ("", "file"),
    ("a\x00b\nc.txt", "abc.txt"),
    ("my report (final).pdf", "my report _final_.pdf"),
    ("résumé.pdf", "résumé.pdf"),
    ("x" * 300 + ".tar.gz", "x" * 97 + ".gz"),
])
def test_names_are_sanitized(given, expected):
    assert chat.sanitize_name(given) == expected


def test_an_uploaded_name_with_a_path_lands_in_the_uploads_directory(upload, workspace):
    [item] = upload(named(b"x", "../../../configs/.auth_token")).json()["files"]
    assert item["name"] == "auth_token"
    assert [name.split("-", 1)[1] for name in stored_files(workspace)] == ["auth_token"]
    assert not (filestores.host_root_dir(workspace.id, "/configs") / ".auth_token").exists()


# --- limits ------------------------------------------------------------------------------------------

def test_a_file_of_exactly_25_mib_is_accepted(upload, workspace):
    response = upload(named(bytes(25 * MIB), "big.bin"))
    assert (response.status_code, response.json()["files"][0]["size"]) == (200, 25 * MIB)


def test_a_file_over_25_mib_is_refused_and_nothing_is_stored(upload, workspace):
    response = upload(named(b"small", "first.txt"), named(bytes(25 * MIB + 1), "huge.bin"))
    assert response.status_code == 413
    assert response.json() == {"error": "file too large (max 25 MiB per file)", "name": "huge.bin",
                               "max_bytes": 25 * MIB}
    assert stored_files(workspace) == []


def test_more_than_50_mib_in_total_is_refused_and_nothing_is_stored(upload, workspace):
    response = upload(named(bytes(20 * MIB), "a.bin"), named(bytes(20 * MIB), "b.bin"),
                      named(bytes(10 * MIB + 1024), "c.bin"))
    assert response.status_code == 413
    assert response.json() == {"error": "upload too large (max 50 MiB in total)", "max_bytes": 50 * MIB}
    assert stored_files(workspace) == []


def test_a_declared_body_over_the_cap_is_refused_before_parsing(client, workspace, token):
    response = client.post(f"/workspaces/{workspace.id}/chat/uploads", b"",
                           content_type="multipart/form-data; boundary=x",
                           CONTENT_LENGTH=str(chat.MAX_BODY_BYTES + 1), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 413
    assert stored_files(workspace) == []


def _asgi_call(path: str, chunks: list[bytes], headers: list) -> tuple[int, bytes, int]:
    """Run one request through the ASGI handler; returns (status, body, chunks received)."""
    sent, received = [], 0

    async def receive():
        nonlocal received
        received += 1
        if received <= len(chunks):
            return {"type": "http.request", "body": chunks[received - 1], "more_body": received < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "server": ("testserver", 80), "client": ("127.0.0.1", 1), "scheme": "http",
             "root_path": "", "http_version": "1.1", "asgi": {"version": "3.0"}}
    asyncio.run(MoleculeASGIHandler()(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), received


def test_the_asgi_handler_refuses_a_long_declared_body_without_reading_it(workspace):
    path = f"/workspaces/{workspace.id}/chat/uploads"
    status, content, received = _asgi_call(path, [b"x"], [(b"content-length", str(chat.MAX_BODY_BYTES + 1).encode())])
    assert (status, json.loads(content), received) == (
        413, {"error": "request body too large", "max_bytes": chat.MAX_BODY_BYTES}, 0)


def test_the_asgi_handler_cuts_a_chunked_body_off_at_the_cap(workspace):
    path = f"/workspaces/{workspace.id}/chat/uploads"
    chunk = bytes(MIB)
    status, _content, received = _asgi_call(path, [chunk] * 60, [(b"content-type", b"multipart/form-data; boundary=x")])
    assert (status, received) == (413, chat.MAX_BODY_BYTES // MIB + 1)
    assert stored_files(workspace) == []


def test_nothing_to_upload_is_a_400(upload, client, workspace, token):
    assert (upload().status_code, upload().json()) == (400, {"error": "no files uploaded (multipart field 'files')"})
    response = client.post(f"/workspaces/{workspace.id}/chat/uploads", {"x": 1}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.json()) == (400, {"error": "expected a multipart/form-data body"})


# --- download path safety ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "workspace:/workspace/.molecule/chat-uploads/../../../configs/.auth_token",
    "/workspace/.molecule/chat-uploads/../secret.txt",
    "/workspace/secret.txt",
    "workspace:/configs/.auth_token",
    "/etc/passwd",
    "workspace:/workspace/.molecule/chat-uploads/",
    "chat-uploads/x",
])
def test_download_refuses_paths_outside_the_uploads_directory(download, workspace, path):
    (filestores.host_root_dir(workspace.id, "/workspace")).mkdir(parents=True)
    (filestores.host_root_dir(workspace.id, "/workspace") / "secret.txt").write_text("secret")
    response = download(path)
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})


def test_download_refuses_a_symlink_out_of_the_workspace(download, workspace, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret")
    uploads_dir(workspace).mkdir(parents=True)
    (uploads_dir(workspace) / f"{'0' * 32}-link.txt").symlink_to(outside)
    response = download(f"workspace:/workspace/.molecule/chat-uploads/{'0' * 32}-link.txt")
    assert (response.status_code, response.json()) == (400, {"error": "invalid path"})


def test_download_of_an_unknown_file_or_without_a_path(download, client, workspace, token):
    response = download(f"workspace:/workspace/.molecule/chat-uploads/{'a' * 32}-gone.txt")
    assert (response.status_code, response.json()) == (404, {"error": "file not found"})
    response = client.get(f"/workspaces/{workspace.id}/chat/download", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.json()) == (400, {"error": "path is required"})


# --- auth and backend --------------------------------------------------------------------------------

def test_another_workspaces_token_and_no_credentials_are_refused(upload, download, workspace):
    other = Workspace.objects.create(name="Other")
    other_token = token_mint(workspace=other)[1]
    [item] = upload(named(b"mine", "mine.txt")).json()["files"]
    for bearer, error in [(other_token, "invalid workspace auth token"), (None, "missing workspace auth token")]:
        response = upload(named(b"theirs", "theirs.txt"), bearer=bearer)
        assert (response.status_code, response.json()) == (401, {"error": error})
        response = download(item["uri"], bearer=bearer)
        assert (response.status_code, response.json()) == (401, {"error": error})
    assert len(stored_files(workspace)) == 1


def test_the_admin_token_may_upload(upload):
    assert upload(named(b"x", "x.txt"), bearer=ADMIN).status_code == 200


def test_without_a_backend_running_workspaces_uploads_answer_503(settings, upload, download, workspace):
    settings.MOLECULE_PROVISIONER = "none"
    get_provisioner.cache_clear()
    response = upload(named(b"x", "x.txt"))
    assert (response.status_code, response.json()) == (503, {"error": "workspace container not running"})
    response = download(f"workspace:/workspace/.molecule/chat-uploads/{'a' * 32}-x.txt")
    assert response.status_code == 503
    assert stored_files(workspace) == []


def test_an_unknown_workspace_is_a_404(upload):
    unknown = "6f1c2f3e-0000-4000-8000-000000000000"
    response = upload(named(b"x", "x.txt"), bearer=ADMIN, workspace_id=unknown)
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})


# --- notify ------------------------------------------------------------------------------------------

def test_notify_carries_an_uploaded_attachment_with_its_real_size(client, upload, workspace, token):
    [item] = upload(named(b"hello world", "greeting.txt")).json()["files"]
    attachments = [
        {"uri": item["uri"], "name": item["name"], "size": 999},
        {"uri": "https://example.com/a.txt", "name": "a.txt"},
    ]
    response = client.post(f"/workspaces/{workspace.id}/notify", {"message": "Here you go", "attachments": attachments},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (response.status_code, response.json()) == (200, {"status": "sent"})
    row = ActivityLog.objects.get(workspace=workspace, method="notify")
    assert row.response_body["parts"] == [
        {"kind": "file", "file": {"uri": item["uri"], "name": "greeting.txt", "size": 11, "mimeType": "text/plain"}},
        {"kind": "file", "file": {"uri": "https://example.com/a.txt", "name": "a.txt"}},
    ]
