"""Threats 2 and 3 over real websockets on loopback: oversize and slow peers, forgery and replay.

What the sans-I/O tests already check (tests/mesh/wire/test_link.py, test_router.py, test_chat.py,
tests/integration/test_node_line.py) is not repeated; these drive a real node from outside.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from chat.daemon import Daemon
from mesh.runtime.node import WS_CHUNK
from mesh.wire.envelope import EnvelopeType
from mesh.wire.handshake import MSG1_LEN, ClientHandshake
from mesh.wire.identity import Identity
from mesh.wire.link import LinkConfig
from mesh.wire.netkey import DEFAULT_NETWORK_KEY
from sim.hostile import HostileLink, TapProxy, befriend, full_or_ci, linked, start_daemon
from tests.conftest import wait_until
from tests.hardening.conftest import record


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Two linked daemons, A <- B."""
    a = await start_daemon(tmp_path, "a")
    assert a.node.address is not None
    b = await start_daemon(tmp_path, "b", dial=[a.node.address])
    await wait_until(lambda: linked(a, b), what="a-b link")
    yield a, b
    await b.stop()
    await a.stop()


def counter(daemon: Daemon, name: str) -> int:
    return daemon.node.router.counters.get(name, 0)


async def still_serves(a: Daemon, b: Daemon) -> None:
    reply = await b.node.ping(a.node.identity.public_key, timeout=5)
    assert reply is not None, "the node stopped serving its good peer"


# -- threat 2: oversize and slow peers ------------------------------------------------


async def test_an_oversize_websocket_message_closes_the_connection(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    assert a.node.listen_url is not None
    async with ws_connect(a.node.listen_url, compression=None, proxy=None, max_size=None) as ws:
        await ws.send(b"\x00" * (2 * WS_CHUNK + 1))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009  # message too big
    await still_serves(a, b)


async def test_a_frame_over_max_frame_closes_the_link_and_is_counted(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    assert a.node.address is not None
    hostile = HostileLink(Identity.generate("big"))
    await hostile.open(a.node.address)
    await wait_until(lambda: len(a.node.conns) == 2, what="the hostile link up")
    await hostile.send_raw_frame(a.node.config.link.max_frame + 1, b"x" * 100)
    await wait_until(lambda: counter(a, "link_closed_FrameError") == 1, what="the frame refused")
    await wait_until(lambda: hostile.closed, what="the hostile link closed")
    await hostile.close()
    await still_serves(a, b)


async def test_a_byte_at_a_time_handshake_is_closed_at_the_deadline(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path, "a", link=LinkConfig(handshake_timeout=0.5))
    try:
        assert a.node.listen_url is not None
        hello = ClientHandshake(
            DEFAULT_NETWORK_KEY, Identity.generate().signing_key, a.node.identity.public_key
        ).data_to_send()
        assert len(hello) == MSG1_LEN
        started = time.monotonic()
        async with ws_connect(a.node.listen_url, compression=None, proxy=None) as ws:
            with pytest.raises(ConnectionClosed):
                for byte in hello:  # 64 bytes at 20 ms: 1.3 s, well past the deadline
                    await ws.send(bytes([byte]))
                    await asyncio.sleep(0.02)  # the attacker's pace, not a wait for the node
                await asyncio.wait_for(ws.recv(), 5)
        assert time.monotonic() - started < 3
        assert counter(a, "link_closed_timeout") == 1
        assert a.node.status()["pending_handshakes"] == 0
    finally:
        await a.stop()


async def test_many_half_open_sockets_are_capped_and_the_node_still_serves(
    pair: tuple[Daemon, Daemon], tmp_path: Path
) -> None:
    a, b = pair
    assert a.node.listen_url is not None
    host, port = a.node.listen_url.removeprefix("ws://").rsplit(":", 1)
    count = full_or_ci(5000, 500)
    # half are raw TCP sockets that never send a request, half finish the websocket upgrade
    # and then say nothing: the first wait for the upgrade deadline, the second for the cap
    raw = []
    for _ in range(count // 2):
        sock = socket.socket()
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.connect((host, int(port)))
        raw.append(sock)

    async def silent() -> object:
        try:
            return await ws_connect(
                a.node.listen_url, compression=None, proxy=None, open_timeout=30
            )
        except Exception as exc:  # refused once the listener is saturated: also fine
            return exc

    held = await asyncio.gather(*(silent() for _ in range(count // 2)))
    try:
        cap = a.node.config.max_pending_handshakes
        assert a.node.status()["pending_handshakes"] <= cap
        # every upgraded socket reached the node: refused with 1013 past the cap, or pending
        # (at most the cap at any time) until the handshake deadline closed it
        opened = sum(not isinstance(ws, Exception) for ws in held)
        assert opened >= min(count // 2, 100)
        await wait_until(
            lambda: (
                counter(a, "refused_handshake_cap")
                + counter(a, "link_closed_timeout")
                + a.node.status()["pending_handshakes"]
                >= opened
            ),
            timeout=30,
            what="every silent socket refused or timed out",
        )
        await still_serves(a, b)  # the established link is untouched
        record(
            "half_open",
            {
                "sockets": count,
                "pending_max": cap,
                "upgraded": opened,
                "refused_by_cap": counter(a, "refused_handshake_cap"),
            },
        )
        # a new good peer gets in once the silent ones hit the handshake deadline (2 s here)
        c = await start_daemon(tmp_path, "c", dial=[a.node.address or ""])
        try:
            await wait_until(lambda: linked(a, c), timeout=30, what="a new peer linked")
        finally:
            await c.stop()
    finally:
        for sock in raw:
            sock.close()
        for ws in held:
            if not isinstance(ws, Exception):
                await ws.close()  # type: ignore[attr-defined]


async def test_compression_is_never_negotiated(pair: tuple[Daemon, Daemon]) -> None:
    a, _ = pair
    assert a.node.listen_url is not None
    async with ws_connect(a.node.listen_url, compression="deflate", proxy=None) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    # a compressed frame (RSV1 set) is then a protocol error: the connection closes
    reader, writer = await asyncio.open_connection(*a.node.listen_url[5:].rsplit(":", 1))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"101" in head.split(b"\r\n")[0] and b"permessage-deflate" not in head
    writer.write(bytes([0xC2, 0x85]) + b"\x00\x00\x00\x00" + b"bomb!")  # FIN|RSV1|binary, masked
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest[:1] == b"\x88" and int.from_bytes(rest[2:4], "big") == 1002  # close: protocol error
    writer.close()


# -- threat 3: forgery and replay on the wire ------------------------------------------------


async def test_a_replayed_envelope_is_dropped_as_duplicate_and_shows_once(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    await befriend(a, b)
    captured = []
    b.node.on_deliver(EnvelopeType.CHAT, captured.append)
    a.chat.send_direct(b.node.identity.peer_id, "only once")
    await wait_until(lambda: captured, what="the DM at b")
    assert b.node.address is not None
    hostile = HostileLink(Identity.generate("replayer"))
    await hostile.open(b.node.address)
    # a stored-type envelope seen before is handed up again once (a mailbox may hand it
    # over twice, and its receipt may have been lost); chat shows it once. Within the
    # replay interval the further copies are dropped and charged to the link (issue 17)
    await hostile.send(*(captured[0].encode() for _ in range(3)))
    await wait_until(lambda: b.chat.counters.get("chat_duplicate", 0) >= 1, what="replay seen")
    await wait_until(lambda: counter(b, "dropped_replayed") >= 2, what="replays dropped")
    assert [m["text"] for m in b.chat.history(a.node.identity.peer_id)] == ["only once"]
    await hostile.close()


async def test_replayed_and_tampered_link_frames_close_the_link(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path, "a")
    proxy = TapProxy(a.node.listen_url or "")
    await proxy.start()
    b = await start_daemon(tmp_path, "b", dial=[proxy.address_for(a.node.address or "")])
    try:
        await wait_until(lambda: linked(a, b), what="a-b link through the proxy")
        replayed = []

        def replay(direction: str, data: bytes) -> list[bytes]:
            if direction == "up" and not replayed:
                replayed.append(data)
                return [data, data]  # the same box-stream bytes again: the nonce moved on
            return [data]

        proxy.tamper = replay
        await b.node.ping(a.node.identity.public_key, timeout=0.5)
        await wait_until(lambda: counter(a, "link_closed_FrameError") >= 1, what="replay refused")

        proxy.tamper = None
        await wait_until(lambda: linked(a, b), what="the dialer's new link")
        flipped = []

        def flip(direction: str, data: bytes) -> list[bytes]:
            if direction == "up" and not flipped and len(data) > 40:
                flipped.append(data)
                return [data[:-1] + bytes([data[-1] ^ 0x01])]
            return [data]

        proxy.tamper = flip
        await b.node.ping(a.node.identity.public_key, timeout=0.5)
        await wait_until(lambda: counter(a, "link_closed_FrameError") >= 2, what="tamper refused")
        proxy.tamper = None
        await wait_until(lambda: linked(a, b), what="the link back")
        await still_serves(a, b)
    finally:
        await b.stop()
        await proxy.stop()
        await a.stop()


def forged(
    hostile: HostileLink, claimed: Identity, type: int, now: float, seq: int, **kw: object
) -> bytes:
    """An envelope naming `claimed` as author but signed by the hostile peer."""
    own = hostile.envelope(type, now, seq=seq, **kw).encode()  # type: ignore[arg-type]
    return own[:5] + claimed.public_key + own[37:]


async def test_forged_authors_and_announces_are_refused_then_the_forger_is_banned(
    pair: tuple[Daemon, Daemon],
) -> None:
    a, b = pair
    assert a.node.address is not None
    hostile = HostileLink(Identity.generate("forger"))
    await hostile.open(a.node.address)
    await wait_until(lambda: len(a.node.conns) == 2, what="forger linked")
    someone = Identity.generate("someone")
    now = time.time()
    # an announce for a key the forger does not hold, and a DM claiming b as its author
    await hostile.send(forged(hostile, someone, EnvelopeType.ANNOUNCE, now, 1))
    await hostile.send(
        forged(
            hostile,
            b.node.identity,
            EnvelopeType.CHAT,
            now,
            2,
            dest=a.node.identity.public_key,
            payload=b"x" * 40,
        )
    )
    await wait_until(lambda: counter(a, "dropped_bad_signature") == 2, what="forgeries dropped")
    assert a.node.router.route_to(someone.public_key, time.time()) is None
    # three more (25 points each, decaying 1 point/s) pass the ban threshold of 100
    await hostile.send(
        *(forged(hostile, someone, EnvelopeType.ANNOUNCE, now, s) for s in (3, 4, 5))
    )
    await wait_until(lambda: hostile.closed, what="the forger's link closed")
    assert hostile.identity.peer_id in a.node.status()["bans"], (
        a.node.router.counters,
        hostile.ws.close_code if hostile.ws else None,
    )
    again = HostileLink(hostile.identity)
    await again.open(a.node.address)  # the handshake works; the banned key is closed at once
    await wait_until(lambda: again.closed, what="the banned peer refused")
    assert counter(a, "dropped_banned") >= 1
    await again.close()
    await hostile.close()
    await still_serves(a, b)
