"""SSRF guard: outgoing fetches may only reach public addresses.

Names are resolved by us and checked *at connect time*, and the connection goes to the checked
address (no second lookup a DNS-rebinding attacker could answer differently). Every redirect
hop opens its own connection through the same check. Loopback, private, link-local (which
includes the 169.254.169.254 cloud-metadata service), CGNAT, multicast and reserved ranges are
refused unless a CIDR in `CRAWL_ALLOW_PRIVATE_NETWORKS` covers the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by `is_global` on every Python version, named for clarity.
_ALWAYS_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fd00:ec2::254/128",  # AWS metadata over IPv6
    )
)


class BlockedAddress(Exception):
    """The destination is (or resolves to) an address outgoing fetches may not reach."""


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`CRAWL_ALLOW_PRIVATE_NETWORKS` as networks; raises ValueError naming a bad entry."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR network: {cidr!r}") from None
    return tuple(networks)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped `::ffff:`, compatible `::a.b.c.d`,
    NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo), so it is checked as that address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if 1 < value < 2**32:  # ::a.b.c.d (:: and ::1 are themselves refused)
        return ipaddress.IPv4Address(value)
    if address in _NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_allowed(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            address = inner
    if any(address.version == net.version and address in net for net in allowed):
        return True
    if any(address.version == net.version and address in net for net in _ALWAYS_BLOCKED):
        return False
    return address.is_global and not address.is_multicast


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, allowed: Sequence[IPNetwork] = ()) -> list[str]:
    """The addresses to connect to for `host`; raises `BlockedAddress` if any is forbidden."""
    literal = _literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    refused = [str(address) for address in addresses if not is_allowed(address, allowed)]
    if refused or not addresses:
        # The resolved address is not quoted: it would map a private network's DNS.
        raise BlockedAddress(
            f"{host} resolves to a private, loopback or link-local address; "
            "set CRAWL_ALLOW_PRIVATE_NETWORKS to allow it"
        )
    return [str(address) for address in addresses]


async def check_url(url: str, allowed: Sequence[IPNetwork] = ()) -> None:
    """Request-time check of a URL's host (the connect-time check still applies later)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise BlockedAddress("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await resolve_checked(host, port, allowed)
    except httpcore.ConnectError:
        return  # unresolvable now: the fetch will report it


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, self._allowed)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as exc:
                error = exc
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {error}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not reachable from fetches")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through the address check."""

    def __init__(self, *, allowed: Sequence[IPNetwork] = (), max_connections: int = 20) -> None:
        super().__init__(trust_env=False)  # a proxy would resolve names behind our back
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allowed),
        )


def guarded_client(
    *, allowed: Sequence[IPNetwork] = (), timeout: float = 15.0, user_agent: str
) -> httpx.AsyncClient:
    """An httpx client for untrusted URLs: guarded connections, no redirects followed for
    you (each hop is checked by the caller too), no proxies from the environment."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allowed=allowed),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent},
    )
