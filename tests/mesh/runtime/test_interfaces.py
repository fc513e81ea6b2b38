"""Addresses other devices can dial: each interface's for a wildcard listener, loopback last."""

from __future__ import annotations

import ipaddress
import socket

from mesh.runtime.interfaces import host_addresses, reachable_urls


def test_loopback_comes_last_and_link_local_never() -> None:
    for family in (socket.AF_INET, socket.AF_INET6):
        found = [ipaddress.ip_address(a) for a in host_addresses(family)]
        assert found[-1].is_loopback
        assert [ip.is_loopback for ip in found] == sorted(ip.is_loopback for ip in found)
        assert not any(ip.is_link_local or ip.is_unspecified for ip in found)


def test_a_wildcard_listener_is_reachable_at_each_address_a_single_one_at_its_own() -> None:
    everywhere = reachable_urls("0.0.0.0", 7707)
    assert everywhere[-1] == "ws://127.0.0.1:7707"
    assert all(url.endswith(":7707") and "0.0.0.0" not in url for url in everywhere)
    assert reachable_urls("::", 7707)[-1] == "ws://[::1]:7707"
    assert reachable_urls("127.0.0.1", 5) == ["ws://127.0.0.1:5"]
