import base64

import pytest

from molecule_site.env import EnvError
from secrets_app import crypto

KEY = bytes(range(32))


def test_round_trip_and_stored_layout():
    stored, version = crypto.encrypt("sk-live-123", KEY)
    assert version == crypto.AES_GCM_VERSION
    assert b"sk-live-123" not in stored
    assert len(stored) == 12 + len("sk-live-123") + 16  # nonce ‖ ciphertext ‖ tag
    assert crypto.decrypt(stored, version, KEY) == "sk-live-123"


def test_each_encryption_uses_a_fresh_nonce():
    assert crypto.encrypt("same", KEY)[0] != crypto.encrypt("same", KEY)[0]


def test_wrong_key_or_tampering_is_a_decryption_error():
    stored, version = crypto.encrypt("value", KEY)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored, version, bytes(32))
    tampered = stored[:-1] + bytes([stored[-1] ^ 1])
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered, version, KEY)


def test_version_zero_rows_are_plaintext():
    assert crypto.decrypt(b"legacy", crypto.PLAINTEXT_VERSION, KEY) == "legacy"


def test_parse_key_accepts_base64_and_raw_32_chars():
    assert crypto.parse_key(base64.b64encode(KEY).decode()) == KEY
    assert crypto.parse_key("k" * 32) == b"k" * 32


@pytest.mark.parametrize("raw", ["", "short", base64.b64encode(bytes(16)).decode(), "k" * 33])
def test_parse_key_rejects_other_values(raw):
    with pytest.raises(EnvError, match="SECRETS_ENCRYPTION_KEY"):
        crypto.parse_key(raw)
