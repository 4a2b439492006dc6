"""The viewer's region: believed only from a trusted proxy, only in ISO 3166-1 alpha-2 shape."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError
from starlette.datastructures import Headers

from main import Settings
from transport.region import client_region, parse_trusted_proxies

HEADER = "CloudFront-Viewer-Country"
PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.7, 2001:db8::/32")


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])


# (header pairs, peer, configured header name, trusted, region)
TABLE = [
    ([(HEADER, "US")], "10.1.2.3", HEADER, PROXIES, "US"),
    ([(HEADER, "de")], "10.1.2.3", HEADER, PROXIES, "DE"),  # lower case is upper-cased
    ([(HEADER, "gB")], "192.168.1.7", HEADER, PROXIES, "GB"),  # a single address
    ([(HEADER.lower(), "FR")], "10.1.2.3", HEADER, PROXIES, "FR"),  # names ignore case
    ([(HEADER, "US")], "203.0.113.9", HEADER, PROXIES, "unknown"),  # spoofed: untrusted peer
    ([(HEADER, "US")], "192.168.1.8", HEADER, PROXIES, "unknown"),  # next to the proxy
    ([(HEADER, "US")], "2001:db8::1", HEADER, PROXIES, "US"),  # IPv6 proxy
    ([(HEADER, "US")], "2001:db9::1", HEADER, PROXIES, "unknown"),
    ([(HEADER, "US")], "::ffff:10.1.2.3", HEADER, PROXIES, "US"),  # dual-stack listener
    ([(HEADER, "US")], "10.1.2.3", None, PROXIES, "unknown"),  # no header configured
    ([(HEADER, "US")], "10.1.2.3", HEADER, (), "unknown"),  # no proxy trusted
    ([(HEADER, "US")], None, HEADER, PROXIES, "unknown"),  # no peer address
    ([(HEADER, "US")], "testclient", HEADER, PROXIES, "unknown"),  # not an address
    ([], "10.1.2.3", HEADER, PROXIES, "unknown"),  # header missing
    ([(HEADER, "")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # empty
    ([(HEADER, "USA")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # three letters
    ([(HEADER, "U")], "10.1.2.3", HEADER, PROXIES, "unknown"),
    ([(HEADER, "1A")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # digits
    ([(HEADER, "T1")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # Cloudflare's Tor marker
    ([(HEADER, " U")], "10.1.2.3", HEADER, PROXIES, "unknown"),
    ([(HEADER, "ÜS")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # not ASCII
    ([(HEADER, "ZZ")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # ISO "unknown"
    ([(HEADER, "xx")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # Cloudflare "unknown"
    ([(HEADER, "US"), (HEADER, "FR")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # two copies
    ([("CF-IPCountry", "US")], "10.1.2.3", HEADER, PROXIES, "unknown"),  # another header
]


@pytest.mark.parametrize(("pairs", "peer", "name", "trusted", "expected"), TABLE)
def test_client_region(pairs, peer, name, trusted, expected):
    assert client_region(headers(*pairs), peer, name, trusted) == expected


def test_a_plain_mapping_of_headers_works_too():
    assert client_region({"country": "nz"}, "10.0.0.1", "country", PROXIES) == "NZ"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("  ", ()),
        ("10.0.0.0/8", (ipaddress.ip_network("10.0.0.0/8"),)),
        ("10.0.0.1", (ipaddress.ip_network("10.0.0.1/32"),)),
        ("10.0.0.1,", (ipaddress.ip_network("10.0.0.1/32"),)),
        (" , ", ()),
        (
            " 10.0.0.0/8 ,::1, 2001:db8::/32",
            (
                ipaddress.ip_network("10.0.0.0/8"),
                ipaddress.ip_network("::1/128"),
                ipaddress.ip_network("2001:db8::/32"),
            ),
        ),
    ],
)
def test_parse_trusted_proxies(text, expected):
    assert parse_trusted_proxies(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy.internal", r"'proxy.internal' is not an IP address or CIDR network"),
        ("10.0.0.1/8", r"'10.0.0.1/8' is not an IP address"),  # host bits set
        ("10.0.0.0/33", r"'10.0.0.0/33'"),
        ("10.0.0.0/8,10.1.0.0/16,10.2.0.0/-1", r"'10.2.0.0/-1'"),
        ("2001:db8::/129", r"'2001:db8::/129'"),
    ],
)
def test_bad_trusted_proxies_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_trusted_proxies(text)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("TRUSTED_PROXIES", "CLIENT_REGION_HEADER", "SESSION_IDLE_S"):
        monkeypatch.delenv(name, raising=False)


def test_settings_default_to_no_region(clean_env):
    s = Settings()
    assert (s.client_region_header, s.trusted_proxy_networks()) == (None, ())
    assert s.session_idle_s == 1800


def test_settings_from_the_environment(clean_env, monkeypatch):
    monkeypatch.setenv("CLIENT_REGION_HEADER", HEADER)
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,2001:db8::/32")
    s = Settings()
    assert s.client_region_header == HEADER
    assert s.trusted_proxy_networks() == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "TRUSTED_PROXIES: 'proxy' is not an IP"),
        ({"CLIENT_REGION_HEADER": HEADER}, "TRUSTED_PROXIES is empty"),
        ({"SESSION_IDLE_S": "0"}, "session_idle_s"),
    ],
)
def test_bad_region_settings_fail_start_up(clean_env, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
