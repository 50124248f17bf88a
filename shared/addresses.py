"""Which hosts the services may reach at a URL a client gave them (a callback's receiver, media
to fetch), so that no client can use them as a way into the network they run in.

A host that resolves to a loopback, private, link-local, multicast or otherwise non-public
address is refused unless the operator allowed that host by name, and the request goes to the
very address that was checked (a name that resolves differently a moment later gains nothing).
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx


class AddressRefused(Exception):
    """The URL's host is one the service does not reach; `reason` says why, and how to allow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where to send a request: the URL with the checked address in place of the host name,
    and what keeps the server seeing the name (the Host header, and TLS's server name)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv6 ranges Python's is_global still counts as global: site-local (deprecated, yet routed
# inside some networks), NAT64 for a network's own use, and IPv4-compatible addresses (::a.b.c.d,
# deprecated; some stacks still reach the IPv4 address).
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(network) for network in ("fec0::/10", "64:ff9b:1::/48", "::/96")
)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NOT_PUBLIC_V6):
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            # A 6to4 relay reaches the IPv4 address it embeds: judge that one.
            address = address.sixtofour
        elif address in NAT64:
            # A NAT64 gateway reaches the IPv4 address in its last 32 bits: judge that one.
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # is_global is False for loopback, private, link-local, unique-local, reserved, unspecified
    # and shared (CGNAT) addresses; multicast may be global yet is no server.
    return address.is_global and not address.is_multicast


async def resolve_target(
    url: str | httpx.URL,
    allowed_hosts: frozenset[str],
    allowing_setting: str = "STT_CALLBACK_ALLOWED_HOSTS",
) -> Target:
    """Resolve the URL's host and check every address it has; raises AddressRefused (naming
    `allowing_setting`, where an operator can allow the host), or socket.gaierror when the name
    does not resolve. `allowed_hosts` are lower case."""
    parsed = httpx.URL(url)
    host = parsed.host.lower()
    if host in allowed_hosts:
        return Target(parsed, {}, {})
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]
    if not addresses or not all(is_public(address) for address in addresses):
        raise AddressRefused(
            f"{host} is not a public address; an operator can allow it with {allowing_setting}"
        )
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Target(
        parsed.copy_with(host=str(addresses[0])), {"Host": parsed.netloc.decode()}, extensions
    )
