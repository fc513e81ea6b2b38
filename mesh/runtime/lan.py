"""LAN discovery over mDNS/DNS-SD (python-zeroconf): announce this node, browse for others.

The I/O edge of mesh/runtime/lanpeers.py, which holds the record format and decides what to
dial. The node starts it only when it listens on an address other devices can reach (not
loopback). :class:`LanDiscovery` registers ``<peer id>._meshnotes._tcp.local.``, browses for
the same service type (unless told not to: a node that dials nothing automatically does not
look), and hands every service it resolves to `on_found`. It uses every interface's IPv4 address
(``InterfaceChoice.All``): the default choice needs a default route, which a network without a
gateway lacks. If mDNS cannot start (no multicast, no interface), it logs one line and the node
runs on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable

from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from mesh.runtime.interfaces import host_addresses
from mesh.runtime.lanpeers import SERVICE_TYPE, Announcement

log = logging.getLogger("meshnotes.lan")

#: how long to wait for a found service's address and TXT record
RESOLVE_TIMEOUT_MS = 3000


def announcement_for(peer_id: str, tag: str, listen_host: str, port: int) -> Announcement | None:
    """What a node listening on `listen_host:port` announces: its IPv4 addresses other
    devices on the LAN can reach (:func:`mesh.runtime.interfaces.host_addresses`, without
    loopback); None when there are none, as for a node listening on loopback only."""
    if not port:
        return None
    every = listen_host in ("", "0.0.0.0", "::")
    found = host_addresses(socket.AF_INET) if every else [listen_host]
    hosts = []
    for text in found:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.version == 4 and not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            hosts.append(text)
    return Announcement(peer_id, tag, tuple(sorted(set(hosts))), port) if hosts else None


class LanDiscovery:
    """Announce a node on the LAN and report the meshnotes services found there."""

    def __init__(
        self,
        announcement: Announcement | None,
        on_found: Callable[[Announcement | None], None],
        on_lost: Callable[[str], None],
        *,
        browse: bool = True,
    ) -> None:
        self.announcement = announcement
        self.browse = browse
        self.on_found = on_found
        self.on_lost = on_lost
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Join the mDNS group, announce (if there is something to announce), browse."""
        try:
            self._zc = AsyncZeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
            if self.announcement is not None:
                info = self._service_info(self.announcement)
                # registering probes the name for over a second: the node need not wait
                registering = asyncio.ensure_future(self._register(self._zc, info))
                self._tasks.add(registering)
                registering.add_done_callback(self._tasks.discard)
            if self.browse:
                self._browser = AsyncServiceBrowser(
                    self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
                )
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("LAN discovery is off: mDNS could not start (%s)", exc)
            await self.stop()
            return
        where = self.announcement.addresses if self.announcement else "(not announced)"
        log.info("LAN discovery on: announced at %s", where)

    async def _register(self, zc: AsyncZeroconf, info: AsyncServiceInfo) -> None:
        try:
            await (await zc.async_register_service(info))
        except Exception as exc:  # socket errors, or zeroconf's own (a name taken on the LAN)
            log.warning("LAN discovery: the announcement failed (%s)", exc)

    async def stop(self) -> None:
        """Say goodbye on the LAN and leave the mDNS group."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        zc, self._zc = self._zc, None
        browser, self._browser = self._browser, None
        with contextlib.suppress(Exception):  # shutting down: nothing left to tell anyone
            if browser is not None:
                await browser.async_cancel()
            if zc is not None:
                async with asyncio.timeout(5):
                    await zc.async_unregister_all_services()
                    await zc.async_close()

    @staticmethod
    def _service_info(announcement: Announcement) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{announcement.peer_id}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in announcement.addresses],
            port=announcement.port,
            properties=announcement.properties(),
            server=f"meshnotes-{announcement.peer_id[:16]}.local.",
        )

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self.on_lost(name.removesuffix(f".{SERVICE_TYPE}"))
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        if self._zc is None:
            return
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, RESOLVE_TIMEOUT_MS):
            log.debug("LAN service %s did not answer", name)
            return
        port = info.port or 0
        self.on_found(Announcement.from_record(info.properties, info.parsed_addresses(), port))
