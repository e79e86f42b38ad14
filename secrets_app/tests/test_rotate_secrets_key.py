"""``manage.py rotate_secrets_key``: all or nothing, verified, and silent about values and keys."""

import base64
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from secrets_app import services
from secrets_app.crypto import AES_GCM_VERSION, DecryptionError, decrypt, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Workspace

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
NEW_KEY_B64 = base64.b64encode(NEW_KEY).decode()
THIRD_KEY = bytes(range(200, 232))
PLAINTEXTS = {
    ("workspace", "OPENAI_API_KEY"): "sk-live-rotate-ws-1111",
    ("workspace", "MODEL_PROVIDER"): "anthropic:claude-rotate",
    ("global", "ANTHROPIC_API_KEY"): "sk-ant-rotate-global-2222",
}
LEGACY_PLAINTEXT = "legacy-plaintext-row-3333"


@pytest.fixture(autouse=True)
def old_key(settings):
    settings.SECRETS_KEY_BYTES = OLD_KEY


@pytest.fixture
def secrets_rows(db):
    workspace = Workspace.objects.create(name="Dev")
    for (scope, key), value in PLAINTEXTS.items():
        stored, version = encrypt(value)
        if scope == "workspace":
            WorkspaceSecret.objects.create(workspace=workspace, key=key, encrypted_value=stored, encryption_version=version)
        else:
            GlobalSecret.objects.create(key=key, encrypted_value=stored, encryption_version=version)
    GlobalSecret.objects.create(key="LEGACY", encrypted_value=LEGACY_PLAINTEXT.encode(), encryption_version=0)
    return workspace


def _snapshot() -> dict:
    return {
        (type(row).__name__, row.pk): (bytes(row.encrypted_value), row.encryption_version, row.updated_at)
        for model in (WorkspaceSecret, GlobalSecret)
        for row in model.objects.all()
    }


def _rotate(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_secrets_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _assert_silent(text: str) -> None:
    for value in [*PLAINTEXTS.values(), LEGACY_PLAINTEXT, NEW_KEY_B64, "k" * 32]:
        assert value not in text


def _all_rows():
    return [*WorkspaceSecret.objects.all(), *GlobalSecret.objects.all()]


@pytest.mark.django_db
def test_rotation_re_encrypts_everything_under_the_new_key(secrets_rows):
    before = _snapshot()

    out, err = _rotate("--new-key", NEW_KEY_B64)

    assert "re-encrypted 2 workspace secrets and 2 global secrets" in out
    _assert_silent(out + err)
    expected = {key: value for (_, key), value in PLAINTEXTS.items()} | {"LEGACY": LEGACY_PLAINTEXT}
    for row in _all_rows():
        assert row.encryption_version == AES_GCM_VERSION
        assert decrypt(row.encrypted_value, row.encryption_version, NEW_KEY) == expected[row.key]
        assert expected[row.key].encode() not in bytes(row.encrypted_value)
        with pytest.raises(DecryptionError):
            decrypt(row.encrypted_value, row.encryption_version, OLD_KEY)
    after = _snapshot()
    assert all(after[pk][2] == before[pk][2] for pk in before)  # updated_at: the values did not change


@pytest.mark.django_db
def test_the_new_key_can_come_from_an_environment_variable(secrets_rows, monkeypatch):
    monkeypatch.setenv("NEW_SECRETS_KEY", "k" * 32)
    out, err = _rotate("--new-key-env", "NEW_SECRETS_KEY")
    assert "re-encrypted 2 workspace secrets and 2 global secrets" in out
    _assert_silent(out + err)
    for row in _all_rows():
        decrypt(row.encrypted_value, row.encryption_version, b"k" * 32)


@pytest.mark.django_db
def test_dry_run_verifies_but_writes_nothing(secrets_rows):
    before = _snapshot()
    out, err = _rotate("--new-key", NEW_KEY_B64, "--dry-run")
    assert "dry run: would re-encrypt 2 workspace secrets and 2 global secrets; nothing was changed" in out
    _assert_silent(out + err)
    assert _snapshot() == before


@pytest.mark.django_db
def test_an_empty_database_rotates_nothing():
    out, _ = _rotate("--new-key", NEW_KEY_B64)
    assert "re-encrypted 0 workspace secrets and 0 global secrets" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_secret_the_old_key_cannot_read_aborts_and_changes_nothing(secrets_rows, dry_run):
    stored, version = encrypt("foreign-plaintext-4444", THIRD_KEY)
    foreign = WorkspaceSecret.objects.create(
        workspace=secrets_rows, key="FOREIGN", encrypted_value=stored, encryption_version=version
    )
    future = GlobalSecret.objects.create(key="FUTURE", encrypted_value=b"x" * 40, encryption_version=7)
    before = _snapshot()

    with pytest.raises(CommandError) as refused:
        _rotate("--new-key", NEW_KEY_B64, *(["--dry-run"] if dry_run else []))

    message = str(refused.value)
    assert "cannot decrypt 2 secret(s) with the current key; nothing was changed" in message
    assert str(foreign.pk) in message and "'FOREIGN'" in message and str(secrets_rows.pk) in message
    assert str(future.pk) in message and "'FUTURE'" in message
    _assert_silent(message)
    assert "foreign-plaintext-4444" not in message
    assert _snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_a_failed_verification_rolls_everything_back(secrets_rows, monkeypatch):
    real_encrypt = services.encrypt

    def corrupting_encrypt(plaintext, key=None):
        stored, version = real_encrypt(plaintext, key)
        return stored[:-1] + bytes([stored[-1] ^ 1]), version  # a bad tag: cannot verify

    monkeypatch.setattr(services, "encrypt", corrupting_encrypt)
    before = _snapshot()

    with pytest.raises(CommandError, match="verification failed for .*; nothing was changed") as refused:
        _rotate("--new-key", NEW_KEY_B64)

    _assert_silent(str(refused.value))
    assert _snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["short", base64.b64encode(bytes(16)).decode(), "k" * 33])
def test_an_invalid_new_key_is_refused_without_echoing_it(secrets_rows, bad):
    before = _snapshot()
    with pytest.raises(CommandError) as refused:
        _rotate("--new-key", bad)
    assert str(refused.value) == "--new-key must be base64 of 32 bytes or a 32-character string"
    assert _snapshot() == before


@pytest.mark.django_db
def test_a_missing_environment_variable_is_refused(secrets_rows, monkeypatch):
    monkeypatch.delenv("NEW_SECRETS_KEY", raising=False)
    with pytest.raises(CommandError, match="^environment variable NEW_SECRETS_KEY is not set$"):
        _rotate("--new-key-env", "NEW_SECRETS_KEY")


@pytest.mark.django_db
def test_a_key_source_is_required():
    with pytest.raises(CommandError, match="one of the arguments --new-key --new-key-env is required"):
        _rotate()
