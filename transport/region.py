"""The viewer's region (ISO 3166-1 alpha-2) from a header a trusted proxy sets.

A CDN or load balancer in front of the service (CloudFront-Viewer-Country,
CF-IPCountry, ...) knows the client's country; the service only sees the proxy.
Any client can send that header itself, so it is believed only when the request
came straight from one of the configured proxies (the ASGI peer address, not a
forwarded-for header, which a client can forge just as well). Anything else is
"unknown": a region is for analytics, and a wrong one is worse than none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"
# Letter pairs that are not a country: ZZ is ISO's "unknown or unspecified"
# (user-assigned), XX is what Cloudflare sends when it has no country.
NOT_A_COUNTRY = frozenset({"XX", "ZZ"})


def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IPs or CIDRs (IPv4 and IPv6); an address is its own /32 or /128.
    Empty entries are skipped, as in ALLOWED_ORIGINS.

    ValueError, naming the entry, for anything else (a host name, a CIDR with
    host bits set, a prefix too long).
    """
    networks: list[IPNetwork] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ValueError(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network ({exc})"
            ) from None
    return tuple(networks)


def _peer_trusted(client_host: str | None, trusted: Sequence[IPNetwork]) -> bool:
    if not trusted or not client_host:
        return False
    try:
        peer = ipaddress.ip_address(client_host)
    except ValueError:
        return False  # a Unix socket path, a test client's "testclient"
    # A dual-stack listener shows IPv4 peers as ::ffff:a.b.c.d.
    mapped = peer.ipv4_mapped if isinstance(peer, ipaddress.IPv6Address) else None
    return any(peer in net or (mapped is not None and mapped in net) for net in trusted)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Starlette's Headers keep repeated headers: a client's own copy next to the
    # proxy's would make the value ambiguous, so two copies are no answer.
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        values = getlist(name)
        return values[0] if len(values) == 1 else None
    return headers.get(name)


def client_region(
    headers: Mapping[str, str],
    client_host: str | None,
    header_name: str | None,
    trusted: Sequence[IPNetwork],
) -> str:
    """The region header's value upper-cased, or ``"unknown"``: see the module doc."""
    if header_name is None or not _peer_trusted(client_host, trusted):
        return UNKNOWN
    value = _header(headers, header_name)
    if value is None or len(value) != 2 or not value.isascii() or not value.isalpha():
        return UNKNOWN
    region = value.upper()
    return UNKNOWN if region in NOT_A_COUNTRY else region
