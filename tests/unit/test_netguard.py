"""The SSRF guard refuses private destinations at connect time, redirects included."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest

from lorebase.knowledge.sources.links import normalize_url
from lorebase.knowledge.sources.netguard import (
    BlockedAddress,
    check_url,
    guarded_client,
    is_allowed,
    parse_networks,
    resolve_checked,
)
from tests.loopback_site import LoopbackSite, Route


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    server = LoopbackSite({"/": Route("hello")})
    yield server
    server.stop()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.5", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "100.100.100.200", "0.0.0.0", "224.0.0.1",  # noqa: S104 "::1", "fe80::1", "fd00:ec2::254",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    ],
)  # fmt: skip
def test_private_loopback_link_local_and_metadata_are_refused(address: str) -> None:
    assert not is_allowed(ipaddress.ip_address(address))


def test_public_addresses_are_allowed() -> None:
    assert is_allowed(ipaddress.ip_address("93.184.216.34"))
    assert is_allowed(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


def test_allow_list_opens_a_range_but_not_metadata_outside_it() -> None:
    allowed = parse_networks(["127.0.0.0/8"])
    assert is_allowed(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not is_allowed(ipaddress.ip_address("169.254.169.254"), allowed)
    with pytest.raises(ValueError, match="not a CIDR"):
        parse_networks(["nonsense"])


async def test_names_are_resolved_before_checking() -> None:
    with pytest.raises(BlockedAddress, match="localhost resolves to a private"):
        await resolve_checked("localhost", 80)
    with pytest.raises(BlockedAddress):
        await check_url("http://169.254.169.254/latest/meta-data/")


async def test_connections_to_loopback_are_refused(site: LoopbackSite) -> None:
    async with guarded_client(user_agent="test") as client:
        with pytest.raises(BlockedAddress):
            await client.get(site.base + "/")
        with pytest.raises(BlockedAddress):
            await client.get(f"http://localhost:{site.port}/")


async def test_allow_list_lets_the_loopback_site_through(site: LoopbackSite) -> None:
    allowed = parse_networks(["127.0.0.0/8"])
    async with guarded_client(allowed=allowed, user_agent="test") as client:
        response = await client.get(site.base + "/")
    assert response.status_code == 200
    assert response.text == "hello"


async def test_redirects_are_not_followed_blindly(site: LoopbackSite) -> None:
    site.routes["/jump"] = Route(status=302, headers={"Location": "http://169.254.169.254/"})
    allowed = parse_networks(["127.0.0.0/8"])
    async with guarded_client(allowed=allowed, user_agent="test") as client:
        response = await client.get(site.base + "/jump")
        assert response.status_code == 302, "the client never follows redirects by itself"
        with pytest.raises((BlockedAddress, httpx.ConnectError)):
            await client.get(response.headers["location"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c?b=2&a=1#frag", "http://example.com/a/c?a=1&b=2"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/docs/?utm_source=x&page=2", "https://example.com/docs/?page=2"),
        ("mailto:someone@example.com", None),
        ("ftp://example.com/file", None),
    ],
)
def test_url_normalisation(raw: str, expected: str | None) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "literal",
    [
        "::127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_ipv4_embedded_in_ipv6_is_checked_as_ipv4(literal: str) -> None:
    import ipaddress

    from lorebase.knowledge.sources.netguard import is_allowed

    assert not is_allowed(ipaddress.ip_address(literal))


async def test_refusal_does_not_quote_the_resolved_address() -> None:
    from lorebase.knowledge.sources.netguard import BlockedAddress, resolve_checked

    with pytest.raises(BlockedAddress) as refused:
        await resolve_checked("localhost", 80)
    assert "127.0.0.1" not in str(refused.value)
    assert "::1" not in str(refused.value)
