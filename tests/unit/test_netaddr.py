"""`host: "::1"` in URLs: bracketed where a URL is built, unchanged elsewhere."""

from __future__ import annotations

import urllib.parse

import pytest

from harness.netaddr import url_address, url_host
from harness.toxiproxy import ToxiproxyClient


@pytest.mark.parametrize(
    ("address", "in_url"),
    [("::1:8474", "[::1]:8474"), ("127.0.0.1:8474", "127.0.0.1:8474"), ("[::1]:80", "[::1]:80")],
)
def test_an_address_goes_into_a_url_that_parses_back(address: str, in_url: str) -> None:
    assert url_address(address) == in_url
    parsed = urllib.parse.urlsplit(f"http://{url_address(address)}/status")
    assert (parsed.hostname, parsed.port) == (
        address.rpartition(":")[0].strip("[]"),
        int(in_url.rpartition(":")[2]),
    )


def test_the_toxiproxy_client_brackets_an_ipv6_api() -> None:
    assert ToxiproxyClient("::1:8474").api == "http://[::1]:8474"
    assert ToxiproxyClient("http://[::1]:8474").api == "http://[::1]:8474"
    assert ToxiproxyClient("127.0.0.1:8474").api == "http://127.0.0.1:8474"
    assert url_host("localhost") == "localhost"
