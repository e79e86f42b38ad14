"""Secret redaction before storage (spec §11.1): every pattern, its label, and what is left alone."""

import base64
import secrets
import time
import uuid

import pytest
from molecule_runtime.tools import redact as runtime_redact

from memory.redaction import redact_json_secrets, redact_secrets

PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"

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


@pytest.mark.parametrize(
    "run",
    [
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # an AWS secret access key: "/" but not a path
        "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",  # lowercase, but letters and digits mixed
        "0123456789abcdef0123456789abcdef01234567",  # a 40-character hex key
        "abcdefghijklmnopqrstuvwxyzabcdefghi",  # one long word is not a path or a name
    ],
)
def test_runs_that_only_resemble_paths_or_names_are_still_redacted(run):
    assert redact_secrets(f"k {run} ok") == "k [REDACTED:BASE64_BLOB] ok"


def test_several_secrets_in_one_text_are_all_redacted():
    content = "GITHUB_TOKEN=ghp_1\nAuthorization: Bearer abc\nkey sk-0123456789abcdefXYZ and ctx7_q"
    assert redact_secrets(content) == (
        "[REDACTED:TOKEN]\nAuthorization: [REDACTED:BEARER_TOKEN]\nkey [REDACTED:SK_TOKEN] and [REDACTED:CTX7_TOKEN]"
    )


# Shapes beyond the spec's list (issue 10): each is replaced whole by its label.
MORE_SHAPES = [
    # passwords, in the spellings agents paste them
    ("password: hunter2", "[REDACTED:PASSWORD]"),
    ("login with passwd=s3cr3t! then", "login with [REDACTED:PASSWORD] then"),
    ("Server=db;Uid=sa;Pwd=Tr0ub4dor", "Server=db;Uid=sa;[REDACTED:PASSWORD]"),
    ('{"user": "bob", "password": "correct horse"}', '{"user": "bob", "[REDACTED:PASSWORD]}'),
    ("MYSQL_ROOT_PASSWORD=rootpw ok", "[REDACTED:PASSWORD] ok"),
    ("db_password: swordfish ok", "[REDACTED:PASSWORD] ok"),
    ("gpg --passphrase=abc ok", "gpg [REDACTED:PASSWORD] ok"),
    ("wifi password: bluebird", "wifi [REDACTED:PASSWORD]"),  # the last word on its line
    ("password: 'long phrase here' ok", "[REDACTED:PASSWORD] ok"),
    ("**Password:** hunter2 ok", "**[REDACTED:PASSWORD] ok"),  # Markdown, as models write it
    ("**DB password**: hunter2 ok", "**DB [REDACTED:PASSWORD] ok"),
    ("`DB_PASSWORD`: hunter2 ok", "`[REDACTED:PASSWORD] ok"),
    # secret keys and private-key assignments
    ("secret_key=abc ok", "[REDACTED:SECRET] ok"),
    ("SSH_PRIVATE_KEY=abc ok", "[REDACTED:PRIVATE_KEY] ok"),
    # AWS access key ids (long-lived AKIA, temporary ASIA)
    ("aws id AKIAIOSFODNN7EXAMPLE ok", "aws id [REDACTED:AWS_ACCESS_KEY] ok"),
    ("ASIAJEXAMPLEXEG2JICEA", "ASIAJEXAMPLEXEG2JICEA"),  # 21 characters: not an access key id
    ("ASIAJEXAMPLEXEG2JICE,", "[REDACTED:AWS_ACCESS_KEY],"),
    # HTTP Basic
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz'", "curl -H 'Authorization: [REDACTED:BASIC_AUTH]'"),
    ('{"Authorization": "basic Zm9vOmJhcg=="}', '{"Authorization": "[REDACTED:BASIC_AUTH]"}'),
    ("Proxy-Authorization: Basic opaque ok", "Proxy-Authorization: [REDACTED:BASIC_AUTH] ok"),
    ("sent Basic dXNlcjpwYXNz to it", "sent [REDACTED:BASIC_AUTH] to it"),  # decodes to user:pass
    # credentials in URLs: the userinfo goes, scheme, host, port and path stay
    ("clone https://user:pass@git.example.com/r.git", "clone https://[REDACTED:URL_CREDENTIALS]@git.example.com/r.git"),
    ("postgres://u:p4ss@db:5432/x", "postgres://[REDACTED:URL_CREDENTIALS]@db:5432/x"),
    ("postgresql://app:pw@10.0.0.5/app?sslmode=require", "postgresql://[REDACTED:URL_CREDENTIALS]@10.0.0.5/app?sslmode=require"),
    ("mysql://root:r00t@localhost:3306/db", "mysql://[REDACTED:URL_CREDENTIALS]@localhost:3306/db"),
    ("redis://:hunter2@cache:6379/0", "redis://[REDACTED:URL_CREDENTIALS]@cache:6379/0"),
    ("amqp://guest:guest@rabbit:5672/", "amqp://[REDACTED:URL_CREDENTIALS]@rabbit:5672/"),
    ("mongodb+srv://a:b@cluster0.mongodb.net/db", "mongodb+srv://[REDACTED:URL_CREDENTIALS]@cluster0.mongodb.net/db"),
    ("jdbc:postgresql://u:p@h/db", "jdbc:postgresql://[REDACTED:URL_CREDENTIALS]@h/db"),
    ("postgres://u:p@ss@db/x", "postgres://[REDACTED:URL_CREDENTIALS]@db/x"),  # an unencoded @ in the password
    ("DATABASE_URL=postgres://u:p@db/x", "DATABASE_URL=postgres://[REDACTED:URL_CREDENTIALS]@db/x"),
    # API key headers
    ("x-api-key: abc123", "[REDACTED:API_KEY]"),
    ("curl -H 'X-Api-Key: abc' -H 'apikey: 9f8e7d'", "curl -H '[REDACTED:API_KEY] -H '[REDACTED:API_KEY]"),
    # Stripe
    ("sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:STRIPE_KEY]"),  # 32 characters in all
    ("key sk_live_" + "a1B2" * 6 + " ok", "key [REDACTED:STRIPE_KEY] ok"),
    ("rk_live_" + "Z9y8" * 6, "[REDACTED:STRIPE_KEY]"),
    ("whsec_" + "abc123" * 4, "[REDACTED:STRIPE_KEY]"),
    # PEM private keys, the whole block
    (
        f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\nthen deploy",
        "key:\n[REDACTED:PRIVATE_KEY]\nthen deploy",
    ),
    (f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----", "[REDACTED:PRIVATE_KEY]"),
    (f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{PEM_BODY}-----END PGP PRIVATE KEY BLOCK-----", "[REDACTED:PRIVATE_KEY]"),
    (f"a\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}", "a\n[REDACTED:PRIVATE_KEY]"),  # cut off: still a key
    # GitHub, Slack, Google, JWT
    ("push with ghp_" + "a1B2c3D4" * 4 + "wxyz", "push with [REDACTED:GITHUB_TOKEN]"),
    ("github_pat_11ABCDEFG0123456789_abcdefghij", "[REDACTED:GITHUB_TOKEN]"),
    ("bot xoxb-123456789012-abcdefABCDEF ok", "bot [REDACTED:SLACK_TOKEN] ok"),
    (
        "post to https://hooks.slack.com/services/T0001/B0002/q7Rk2mWv9LpZ now",
        "post to https://hooks.slack.com/services/[REDACTED:SLACK_WEBHOOK] now",
    ),
    ("maps AIzaSyA-1234567890abcdefghijklmnopqrstu ok", "maps [REDACTED:GOOGLE_API_KEY] ok"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-abc ok", "jwt [REDACTED:JWT] ok"),
    ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[REDACTED:JWT]"),  # unsigned
]


@pytest.mark.parametrize(("content", "stored"), MORE_SHAPES)
def test_each_further_credential_shape_is_replaced_by_its_label(content, stored):
    assert redact_secrets(content) == stored


ORDINARY_TEXT = [
    "reset your password: see the docs",  # the keyword and prose after ":"
    "**Password:** see the docs",
    "the API key rotates monthly",
    "the secret: keep it short",
    "Password reset emails go out hourly; token rotation is weekly; key ceremonies are yearly.",
    "see https://docs.example.com/a/b?page=2#top and http://localhost:8000/health",
    "ssh://git@github.com/org/repo.git",  # a user name without a password is not a credential
    "mail bob@example.com via https://example.com/contact?from=alice@example.com",
    "2024-05-01T10:00:00Z and 2024-05-01T10:00:00.123456+02:00",
    "/usr/local/lib/python3.11/site-packages/django/db/models/query.py",
    "/home/me/Projects/MyApp/src/components/settings/panel/index.tsx",
    f"/var/lib/molecule/workspaces/{uuid.UUID(int=7)}/configs/system-prompt-for-research.md",
    "test_a_string_under_a_credential_name_is_redacted_whole and long-kebab-case-component-name-here",
    "C:\\Users\\me\\project\\README.md",
    "commit 3f9a2c1 and build deadbeef",
    "def redact_json_secrets(value): return value  # myObject.someMethod()",
    "PWD=/work/main\nOLDPWD=/home/me",  # the shell's working directory, not a password
    "Basic usage: call it twice",
    "AKIA is how AWS access key ids start",
    "ghp_ and xoxb- are token prefixes",
    "-----BEGIN CERTIFICATE-----",
    "Authorization: required on every route",
    "max_tokens=4096 token_count: 3 password_reset_url: https://example.com/reset",
]


@pytest.mark.parametrize("content", ORDINARY_TEXT)
def test_ordinary_text_survives(content):
    assert redact_secrets(content) == content


def test_a_base64_basic_credential_that_is_not_user_and_password_is_prose():
    not_a_credential = base64.b64encode(b"no colon here").decode()
    assert redact_secrets(f"Basic {not_a_credential}") == f"Basic {not_a_credential}"


@pytest.mark.parametrize("content", [row[0] for row in SPEC_PATTERNS + MORE_SHAPES])
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


@pytest.mark.parametrize(
    "unit",
    [
        "a-",  # "-" puts a word boundary before every letter
        "PWD=/",
        "password: word ",  # a bare keyword rejected before prose, over and over
        "**Password:** word ",
        "a.b",  # URL scheme characters
        "ab/" * 10 + "Cd",  # a path-like run that fails to be words only at its end
        "a://b:c",  # URL credentials without the "@"
        "http://u:" + "@" * 20,
        "-----BEGIN PRIVATE KEY-----",  # blocks that never end
        "-----BEGIN ",
        "Authorization: Basic ",
        "Basic dXNlcjpwYXNz ",
        "eyJa.",
        "AKIA",
        "sk_live_",
        "hooks.slack.com/services/",
        '"password": "',
    ],
)
def test_100_kb_of_adversarial_input_is_redacted_well_under_a_second(unit):
    content = unit * (100_000 // len(unit) + 1)
    assert len(content) >= 100_000
    started = time.monotonic()
    redact_secrets(content)
    assert time.monotonic() - started < 0.5


# --- JSON values (key/value memory) -------------------------------------------------------------------

def test_every_string_in_a_json_value_is_redacted():
    value = {"dsn": "postgres://u:p4ss@db/x", "steps": ["ok", "export GITHUB_TOKEN=ghp_1"], "n": 3, "done": True}
    assert redact_json_secrets(value) == {
        "dsn": "postgres://[REDACTED:URL_CREDENTIALS]@db/x",
        "steps": ["ok", "export [REDACTED:TOKEN]"],
        "n": 3,
        "done": True,
    }


def test_a_string_under_a_credential_name_is_redacted_whole():
    value = {"password": "hunter2", "db": {"api_key": "abc", "token": "", "user": "bob"}, "pwd": "/work/main"}
    assert redact_json_secrets(value) == {
        "password": "[REDACTED:PASSWORD]",
        "db": {"api_key": "[REDACTED:API_KEY]", "token": "", "user": "bob"},
        "pwd": "/work/main",
    }


def test_numbers_booleans_and_null_keep_their_types_even_under_credential_names():
    value = {"secret_count": 3, "token": None, "password_set": True, "max_tokens": 4096}
    assert redact_json_secrets(value) == value


def test_member_names_are_redacted_too():
    assert redact_json_secrets({"redis://:pw@cache:6379": "up"}) == {"redis://[REDACTED:URL_CREDENTIALS]@cache:6379": "up"}


@pytest.mark.parametrize("value", ["AKIAIOSFODNN7EXAMPLE", ["a", 1, None], 2.5, None, False])
def test_json_scalars_and_lists_at_the_top(value):
    expected = "[REDACTED:AWS_ACCESS_KEY]" if value == "AKIAIOSFODNN7EXAMPLE" else value
    assert redact_json_secrets(value) == expected


# --- the runtime's copy -----------------------------------------------------------------------------

@pytest.mark.parametrize("content", [row[0] for row in SPEC_PATTERNS + MORE_SHAPES] + ORDINARY_TEXT)
def test_the_runtime_copy_redacts_exactly_like_the_platform(content):
    assert runtime_redact.redact_secrets(content) == redact_secrets(content)
