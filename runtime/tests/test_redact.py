"""Client-side secret redaction (molecule_runtime.tools.redact): one case per shape and label,
text that must survive, and hostile input. The platform's memory/tests/test_redaction.py holds
the full table and checks that this copy agrees with the platform's on all of it."""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
from molecule_runtime.tools.redact import redact_secrets

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("content", "sent"),
    [
        ("use OPENAI_API_KEY=sk-proj-abc123 now", "use [REDACTED:API_KEY] now"),
        ("GITHUB_TOKEN=ghp_1 ok", "[REDACTED:TOKEN] ok"),
        ("CLIENT_SECRET=hunter2 ok", "[REDACTED:SECRET] ok"),
        ("password: hunter2", "[REDACTED:PASSWORD]"),
        ("Server=db;Pwd=Tr0ub4dor", "Server=db;[REDACTED:PASSWORD]"),
        ("SSH_PRIVATE_KEY=abc ok", "[REDACTED:PRIVATE_KEY] ok"),
        ("x-api-key: abc123", "[REDACTED:API_KEY]"),
        ("Authorization: Bearer abc.def", "Authorization: [REDACTED:BEARER_TOKEN]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED:BASIC_AUTH]"),
        ("db postgres://u:p4ss@db:5432/x ok", "db postgres://[REDACTED:URL_CREDENTIALS]@db:5432/x ok"),
        ("aws AKIAIOSFODNN7EXAMPLE ok", "aws [REDACTED:AWS_ACCESS_KEY] ok"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:STRIPE_KEY]"),
        (f"key:\n{PEM}\nthen", "key:\n[REDACTED:PRIVATE_KEY]\nthen"),
        ("ghp_" + "a1B2c3D4" * 4 + "wxyz", "[REDACTED:GITHUB_TOKEN]"),
        ("xoxb-123456789012-abcdefABCDEF", "[REDACTED:SLACK_TOKEN]"),
        ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "[REDACTED:GOOGLE_API_KEY]"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "[REDACTED:JWT]"),
        ("openai key sk-abcdefghijklmnopqrstuvwxyz123456", "openai key [REDACTED:SK_TOKEN]"),
        ("ctx7_a1b2c3", "[REDACTED:CTX7_TOKEN]"),
        (f"token {secrets.token_urlsafe(32)} ok", "token [REDACTED:BASE64_BLOB] ok"),
    ],
)
def test_each_shape_is_replaced_by_its_label(content, sent):
    assert redact_secrets(content) == sent


@pytest.mark.parametrize(
    "content",
    [
        "reset your password: see the docs",
        "the API key rotates monthly",
        "see https://docs.example.com/a?b=c and ssh://git@github.com/org/repo.git",
        f"delegated to {uuid.uuid4()} at 2024-05-01T10:00:00Z",
        "/usr/local/lib/python3.11/site-packages/django/db/models/query.py",
        "commit 3f9a2c1; test_a_string_under_a_credential_name_is_redacted_whole",
        "PWD=/work/main",
        "Basic usage: call it twice",
    ],
)
def test_ordinary_text_is_sent_as_written(content):
    assert redact_secrets(content) == content


@pytest.mark.parametrize("unit", ["a-", "PWD=/", "password: word ", "a://b:c", "-----BEGIN PRIVATE KEY-----", "_SECRET"])
def test_100_kb_of_hostile_input_is_redacted_well_under_a_second(unit):
    content = unit * (100_000 // len(unit) + 1)
    started = time.monotonic()
    redact_secrets(content)
    assert time.monotonic() - started < 0.5
