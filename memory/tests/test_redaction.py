"""Secret redaction before storage (spec §11.1): every pattern, its label, and what is left alone."""

import secrets
import time
import uuid

import pytest

from memory.redaction import redact_secrets

SPEC_PATTERNS = [
    # <NAME>_API_KEY=…
    ("use OPENAI_API_KEY=sk-proj-abc123 for the demo", "use [REDACTED:API_KEY] for the demo"),
    ("ANTHROPIC_API_KEY=xyz", "[REDACTED:API_KEY]"),
    # <NAME>_TOKEN=…
    ("export GITHUB_TOKEN=ghp_0123abc then push", "export [REDACTED:TOKEN] then push"),
    ("SLACK_BOT_TOKEN=xoxb-1-2-3", "[REDACTED:TOKEN]"),
    # <NAME>_SECRET=…
    ("CLIENT_SECRET=hunter2 is set", "[REDACTED:SECRET] is set"),
    ("OAUTH_CLIENT_SECRET=s3cr3t", "[REDACTED:SECRET]"),
    # Bearer <x>
    ("curl -H 'Authorization: Bearer abc.def-ghi_jkl'", "curl -H 'Authorization: [REDACTED:BEARER_TOKEN]'"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig= done", "[REDACTED:BEARER_TOKEN] done"),
    # sk- followed by at least 16 characters
    ("key sk-abcdefghijklmnop here", "key [REDACTED:SK_TOKEN] here"),
    ("sk-ant-api03-abcdEFGH1234_xyz", "[REDACTED:SK_TOKEN]"),
    # ctx7_…
    ("context7 key ctx7_a1b2c3 works", "context7 key [REDACTED:CTX7_TOKEN] works"),
    # base64-ish runs of 33 characters or more (standard and url-safe alphabets, with padding)
    ("blob " + "QUJD" * 8 + "R==" + " end", "blob [REDACTED:BASE64_BLOB] end"),
    ("a+b/" * 9, "[REDACTED:BASE64_BLOB]"),
    ("x" * 33, "[REDACTED:BASE64_BLOB]"),
]


@pytest.mark.parametrize(("content", "stored"), SPEC_PATTERNS)
def test_each_spec_pattern_is_replaced_by_its_label(content, stored):
    assert redact_secrets(content) == stored


@pytest.mark.parametrize(
    "content",
    [
        "sk-abcdefghijklmno is too short to be a key",  # sk- + 15 characters
        "x" * 32,  # one short of a base64 run
        "ctx7 without the underscore",
        "the bearer of good news",  # lowercase prose, not an Authorization header
        "max_tokens: 4096 and tokens=5",  # names that only contain the words
        "the token: it expires hourly",  # the bare keyword with ":" is prose
        "The deployment pipeline failed on step 3; retried and it passed.",
        "EMPTY_TOKEN=\nNEXT=1",  # no value on the line
    ],
)
def test_innocent_content_is_left_alone(content):
    assert redact_secrets(content) == content


@pytest.mark.parametrize(
    ("content", "stored"),
    [
        ("API_KEY=abc", "[REDACTED:API_KEY]"),  # the bare name
        ("token=abc ok", "[REDACTED:TOKEN] ok"),
        ("secret=abc ok", "[REDACTED:SECRET] ok"),
        ("openai_api_key=abc ok", "[REDACTED:API_KEY] ok"),  # any case
        ("GITHUB_TOKEN = ghp_1 ok", "[REDACTED:TOKEN] ok"),  # spaces around "="
        ("github_token: ghp_1 ok", "[REDACTED:TOKEN] ok"),  # YAML
        ('{"OPENAI_API_KEY": "sk a b", "n": 1}', '{"[REDACTED:API_KEY], "n": 1}'),  # JSON, quoted value
        ("DB_SECRET='two words' ok", "[REDACTED:SECRET] ok"),
        ("AWS_SECRET_ACCESS_KEY=abc ok", "[REDACTED:SECRET] ok"),  # the name goes on after SECRET
        ("SECRET_KEY: abc ok", "[REDACTED:SECRET] ok"),
        ("X_API_KEY: Bearer abc ok", "[REDACTED:API_KEY] ok"),  # the scheme does not shield the value
        ("callback: https://h/cb?token=abc&x=1 ok", "callback: https://h/cb?[REDACTED:TOKEN] ok"),
        ("foo=OPENAI_API_KEY=abc ok", "foo=[REDACTED:API_KEY] ok"),
    ],
)
def test_credential_assignments_in_other_spellings_are_redacted_too(content, stored):
    assert redact_secrets(content) == stored


def test_a_platform_workspace_token_is_redacted():
    token = secrets.token_urlsafe(32)  # the shape registry.services.token_mint hands out
    assert redact_secrets(f"my token is {token}.") == "my token is [REDACTED:BASE64_BLOB]."


def test_uuids_are_ids_not_secrets():
    workspace_id, task_id = uuid.uuid4(), uuid.uuid4()
    content = f"delegated to {workspace_id} as task {task_id}; container ws-{workspace_id}/{task_id}"
    assert redact_secrets(content) == content


def test_a_long_run_glued_to_a_uuid_is_still_redacted():
    assert redact_secrets(f"{uuid.uuid4()}{'B' * 33}") == "[REDACTED:BASE64_BLOB]"


def test_several_secrets_in_one_text_are_all_redacted():
    content = "GITHUB_TOKEN=ghp_1\nAuthorization: Bearer abc\nkey sk-0123456789abcdefXYZ and ctx7_q"
    assert redact_secrets(content) == (
        "[REDACTED:TOKEN]\nAuthorization: [REDACTED:BEARER_TOKEN]\nkey [REDACTED:SK_TOKEN] and [REDACTED:CTX7_TOKEN]"
    )


@pytest.mark.parametrize("content", [row[0] for row in SPEC_PATTERNS])
def test_redaction_is_idempotent(content):
    once = redact_secrets(content)
    assert redact_secrets(once) == once


@pytest.mark.parametrize(
    "content",
    ["_SECRET" * 20000, "a_" * 50000, "a=" * 50000, "Bearer " * 20000, "sk-" * 30000, '"' * 100000, "A" * 100000],
)
def test_redaction_stays_linear_on_hostile_input(content):
    started = time.monotonic()
    redact_secrets(content)
    assert time.monotonic() - started < 2
