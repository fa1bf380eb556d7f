"""Addresses in URLs: an IPv6 host (`::1`, which topologies may use) must be bracketed there
(`http://[::1]:8080/`), while `host:port` elsewhere (command lines, sockets) stays as it is,
since every parser of it splits at the last colon."""

from __future__ import annotations


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def url_address(address: str) -> str:
    """`host:port` as it goes after `http://`."""
    host, _, port = address.rpartition(":")
    return f"{url_host(host)}:{port}"
