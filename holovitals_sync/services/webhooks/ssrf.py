"""The SSRF guard: outbound webhook targets must resolve to public addresses.

Checked when a subscription is saved and again right before each send, after DNS resolution,
because a name that was public at save time can later point inside the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# The cloud metadata service is link-local already; named here because it is the usual prize.
METADATA = ipaddress.ip_address("169.254.169.254")


class TargetRefused(ValueError):
    """The URL is malformed or resolves to an address webhooks may not reach."""


# NAT64 (RFC 6052): the last 32 bits are an IPv4 address the gateway reaches.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped, 6to4, Teredo client, or NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _internal(address: IPAddress) -> bool:
    """Anything but a public unicast address: private, loopback, link-local, carrier-grade
    NAT (100.64.0.0/10, where some clouds keep their metadata at 100.100.100.200), reserved,
    documentation, and IPv6 forms that carry such an IPv4 address (6to4 `2002::/16`, Teredo,
    NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _internal(embedded)
    return (
        address == METADATA
        or not address.is_global
        or address.is_multicast
        or address.is_unspecified
    )


def _allowed(host: str, address: IPAddress, allow: Sequence[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name entry that is not this host
    return False


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address a host name resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise TargetRefused(f"host {host} does not resolve") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


@dataclass(frozen=True)
class PinnedTarget:
    """A vetted URL rewritten to the address that was checked, so the send cannot be sent
    elsewhere by a second DNS answer (DNS rebinding between check and connect)."""

    url: str  # the same URL with the host replaced by the vetted address
    host: str  # for the Host header and, over https, SNI and certificate checks


def check_target(url: str, allow: Sequence[str]) -> PinnedTarget:
    """Refuse a webhook URL that is not http(s) or resolves to an internal address.

    Args:
        url: The subscription's target.
        allow: The `webhook_allow_hosts` setting: host names, IPs or CIDR networks that may
            be internal (a local receiver during development, an on-premises service).

    Raises:
        TargetRefused: with a reason naming the host, never the full URL (it may carry a
            token in its query).
    """
    try:
        parts = urlsplit(url)
        host_name = parts.hostname
    except ValueError:  # "http://[::1/x": an unclosed IPv6 bracket, say
        raise TargetRefused("the URL is malformed") from None
    if parts.scheme not in ("http", "https") or not host_name:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused("the URL holds spaces or control characters")
    host = host_name.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL has an invalid port") from None
    addresses = resolve(host, port)
    for address in addresses:
        if _internal(address) and not _allowed(host, address, allow):
            raise TargetRefused(
                f"host {host} resolves to an internal address ({address}); add it to "
                "HOLOVITALS_WEBHOOK_ALLOW_HOSTS to allow it"
            )
    return _pinned(parts, host, addresses[0])


def _pinned(parts: SplitResult, host: str, address: IPAddress) -> PinnedTarget:
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    named = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    host_header = named if parts.port is None else f"{named}:{parts.port}"
    return PinnedTarget(urlunsplit(parts._replace(netloc=netloc)), host_header)
