"""URL safety rules: register (spec §7.1, §20.7), discovery (§8.3) and A2A targets (§8.4 step 7).

Host names go through the system resolver (``socket.getaddrinfo``); tests replace it with a fixed
table so no test depends on DNS.
"""

from __future__ import annotations

import socket

import pytest

from registry import ssrf
from registry.ssrf import a2a_target_allowed, discover_url_allowed, register_url_allowed, register_url_problem

RESOLVER_TABLE = {
    "public.example": ["93.184.216.34"],
    "public6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
    "metadata.example": ["169.254.169.254"],
    "internal.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.34", "10.1.2.3"],
    "mixed-meta.example": ["93.184.216.34", "fe80::1"],
    "loopback.example": ["127.0.0.1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "127.1": ["127.0.0.1"],  # what glibc makes of the short form
}


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    """The system resolver, answering from RESOLVER_TABLE; records the names it was asked."""
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host not in RESOLVER_TABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (a, 0, 0, 0) if ":" in a else (a, 0))
            for a in RESOLVER_TABLE[host]
        ]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture(autouse=True)
def _self_hosted(settings):
    """Self-hosted, not dev: the strictest combination unless a test relaxes it."""
    settings.SAAS_MODE = False
    settings.DEV_MODE = False
    settings.A2A_ALLOW_PRIVATE_TARGETS = False
    return settings


ALWAYS_BLOCKED = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://169.254.1.1:8000",
    "http://0.0.0.0:8000",
    "http://0.1.2.3",
    "http://192.0.2.10",  # TEST-NET-1
    "http://198.51.100.7",  # TEST-NET-2
    "http://203.0.113.9",  # TEST-NET-3
    "http://100.64.0.1",  # CGNAT
    "http://100.127.255.254",
    "http://224.0.0.1",  # multicast
    "http://239.255.255.250",
    "http://[fe80::1]:8000",  # IPv6 link-local
    "http://[fe80::1%25eth0]:8000",  # … with a zone id
    "http://[fc00::1]",  # the ULA half no mode allows
    "http://[2001:db8::1]",  # documentation
    "http://[::]",  # unspecified
    "http://[ff02::1]",  # multicast
    "http://[::ffff:169.254.169.254]",  # IPv4-mapped metadata
    "http://metadata.example",  # a name resolving to a blocked address
    "http://mixed-meta.example",  # … one blocked address among good ones is enough
]


# --- register (spec §7.1) ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://93.184.216.34:8000/a2a",
    "https://93.184.216.34",
    "http://[2606:2800:220:1:248:1893:25c8:1946]:443",
    "http://public.example:8000",
    "https://public6.example/a2a",
    "HTTP://public.example",  # scheme is case-insensitive
])
def test_register_accepts_public_addresses_and_names(url):
    assert register_url_allowed(url) is True


@pytest.mark.parametrize("url", [
    "ftp://public.example", "file:///etc/passwd", "javascript:alert(1)", "public.example:8000",
    "http://", "http:///a2a", "", "http://public.example:99999", "http://public.example:port",
    " http://public.example", "http://public.example\t/", "http://public.example/a b",
    "http://public.example\\@127.0.0.1/", "http://public.example/\x00",
])
def test_register_rejects_other_schemes_and_malformed_urls(url):
    assert register_url_allowed(url) is False


@pytest.mark.parametrize("url", ALWAYS_BLOCKED)
@pytest.mark.parametrize("saas", [False, True])
def test_register_always_rejects_metadata_link_local_test_nets_cgnat_multicast(settings, url, saas):
    settings.SAAS_MODE = saas
    assert register_url_allowed(url) is False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000", "http://127.1.2.3", "http://[::1]:8000", "http://[::ffff:127.0.0.1]:8000",
    "http://loopback.example", "http://mapped.example", "http://127.1",
])
def test_register_rejects_loopback_outside_dev_mode_whatever_else_is_relaxed(settings, url):
    settings.SAAS_MODE = True
    settings.DEV_MODE = False
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    assert register_url_allowed(url) is False
    assert register_url_problem(url).endswith(" is loopback")


def test_register_accepts_loopback_in_dev_mode_only(settings, resolver):
    """Beyond the spec (which refuses it in dev mode too): the runtime's documented default
    AGENT_URL is http://127.0.0.1:<port>. Metadata and link-local stay refused."""
    settings.DEV_MODE = True
    assert register_url_allowed("http://127.0.0.1:8000") is True
    assert register_url_allowed("http://[::1]:8000") is True
    assert register_url_problem("http://169.254.169.254") == (
        "url must be publicly routable: 169.254.169.254 is link-local, reserved or documentation-only")


def test_register_accepts_localhost_by_name_without_resolving_it(resolver):
    assert register_url_allowed("http://localhost:8000/a2a") is True
    assert register_url_allowed("https://LOCALHOST") is True
    assert resolver == []


@pytest.mark.parametrize("url", [
    "http://10.0.0.5:8000", "http://172.16.0.1", "http://172.31.255.255", "http://192.168.1.20",
    "http://[fd00::1]", "http://[fdab:1234::9]", "http://internal.example", "http://[::ffff:10.1.2.3]",
])
def test_register_rejects_private_ranges_outside_saas_and_allows_them_in_saas(settings, url):
    assert register_url_allowed(url) is False
    settings.SAAS_MODE = True
    assert register_url_allowed(url) is True


def test_register_private_rules_ignore_dev_mode(settings):
    settings.DEV_MODE = True
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    assert register_url_allowed("http://10.0.0.5") is False


def test_register_neighbours_of_private_ranges_are_public():
    assert register_url_allowed("http://172.32.0.1") is True
    assert register_url_allowed("http://11.0.0.1") is True
    assert register_url_allowed("http://100.128.0.1") is True


def test_register_checks_every_resolved_address():
    assert register_url_allowed("http://mixed.example") is False


def test_register_rejects_unresolvable_names(resolver):
    assert register_url_allowed("http://no-such-host.invalid:8000") is False
    assert resolver == ["no-such-host.invalid"]


def test_resolver_answers_that_are_not_addresses_are_rejected(monkeypatch):
    monkeypatch.setattr(
        ssrf.socket, "getaddrinfo", lambda *a, **k: [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/tmp/sock",))]
    )
    assert register_url_allowed("http://odd.example") is False


# --- discovery (spec §8.3) ---------------------------------------------------------------------------

def test_discover_allows_host_docker_internal_by_name_and_otherwise_follows_register(resolver):
    assert discover_url_allowed("http://host.docker.internal:8000") is True
    assert discover_url_allowed("http://localhost:8000") is True
    assert resolver == []
    assert discover_url_allowed("http://127.0.0.1:8000") is False
    assert discover_url_allowed("http://169.254.169.254") is False
    assert discover_url_allowed("http://public.example") is True
    assert register_url_allowed("http://host.docker.internal:8000") is False


# --- A2A targets (spec §8.4 step 7) ------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000", "http://[::1]:8000", "http://[::ffff:127.0.0.1]", "http://localhost:8000",
    "http://loopback.example",
])
def test_a2a_rejects_loopback_unless_private_targets_are_allowed(settings, url):
    assert a2a_target_allowed(url) is False
    settings.SAAS_MODE = True
    assert a2a_target_allowed(url) is False  # SaaS alone does not open loopback
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    assert a2a_target_allowed(url) is True


@pytest.mark.parametrize("url", ["http://10.0.0.5", "http://172.20.1.1", "http://192.168.0.9", "http://[fd12::5]"])
@pytest.mark.parametrize("relax", ["SAAS_MODE", "A2A_ALLOW_PRIVATE_TARGETS"])
def test_a2a_rejects_private_ranges_unless_saas_or_private_targets_allowed(settings, url, relax):
    assert a2a_target_allowed(url) is False
    setattr(settings, relax, True)
    assert a2a_target_allowed(url) is True


@pytest.mark.parametrize("url", ALWAYS_BLOCKED)
def test_a2a_always_rejects_metadata_link_local_test_nets_cgnat_multicast(settings, url):
    settings.SAAS_MODE = True
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    assert a2a_target_allowed(url) is False


def test_a2a_accepts_public_targets_and_rejects_other_schemes():
    assert a2a_target_allowed("https://public.example/a2a") is True
    assert a2a_target_allowed("http://93.184.216.34:9000") is True
    assert a2a_target_allowed("gopher://public.example") is False
    assert a2a_target_allowed("http://no-such-host.invalid") is False
    assert a2a_target_allowed("http://mixed.example") is False
