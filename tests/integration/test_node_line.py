"""Nodes over real websockets on loopback: lines of relays, restarts, wrong network keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from mesh.runtime.node import Node, NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from mesh.wire.link import Link, LinkConfig, LinkState
from tests.conftest import wait_until

FAST_LINK = LinkConfig(handshake_timeout=2.0, heartbeat_interval=1.0, idle_timeout=5.0)


def config(**kwargs: object) -> NodeConfig:
    defaults: dict[str, object] = {
        "auto_connect": False,
        "link": FAST_LINK,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
    }
    defaults.update(kwargs)
    return NodeConfig(**defaults)  # type: ignore[arg-type]


async def start_line(count: int) -> list[Node]:
    """Start `count` nodes where node i+1 dials node i (a line; no other links)."""
    nodes: list[Node] = []
    for i in range(count):
        peers = [PeerAddress.parse(nodes[-1].address or "")] if nodes else []
        node = Node(Identity.from_seed(bytes([i + 1]) * 32, f"n{i}"), config(peers=peers))
        await node.start()
        nodes.append(node)
    return nodes


@pytest.fixture
async def line5() -> AsyncIterator[list[Node]]:
    nodes = await start_line(5)
    yield nodes
    for node in reversed(nodes):
        await node.stop()


def route_hops(node: Node, dest: Node) -> int | None:
    route = node.router.route_to(dest.identity.public_key, node.clock())
    return None if route is None else route.hops


async def test_five_node_line_delivers_across_three_relays(line5: list[Node]) -> None:
    first, last = line5[0], line5[-1]
    await wait_until(lambda: route_hops(first, last) == 4, what="a 4-hop route from n0 to n4")
    route = first.router.route_to(last.identity.public_key, first.clock())
    assert route is not None and route.next_hop == line5[1].identity.public_key

    received: list[Envelope] = []
    last.on_deliver(EnvelopeType.DATA, received.append)
    envelope = first.router.make(
        EnvelopeType.DATA,
        first.clock(),
        dest_kind=DestKind.PEER,
        dest=last.identity.public_key,
        payload=b"across three relays",
    )
    first.send(envelope)
    await wait_until(lambda: received, what="delivery at n4")
    assert received[0].payload == b"across three relays"
    assert received[0].hops + 1 == 4
    for relay in line5[1:4]:
        assert relay.router.counters.get("relayed", 0) >= 1

    reply = await first.ping(last.identity.public_key, timeout=5)
    assert reply is not None and reply.hops == 4


async def test_restarting_the_middle_node_restores_the_route(line5: list[Node]) -> None:
    first, middle, last = line5[0], line5[2], line5[-1]
    await wait_until(lambda: route_hops(first, last) == 4, what="the initial route")
    assert middle.listen_url is not None
    port = int(middle.listen_url.rsplit(":", 1)[1])
    peers = middle.config.peers
    await middle.stop()
    await wait_until(lambda: route_hops(first, last) is None, what="the route to vanish")
    assert await first.ping(last.identity.public_key, timeout=0.5) is None

    revived = Node(middle.identity, config(peers=peers, listen=("127.0.0.1", port)))
    await revived.start()
    line5[2] = revived  # the fixture stops it
    await wait_until(lambda: route_hops(first, last) == 4, timeout=15, what="the route to return")
    reply = await first.ping(last.identity.public_key, timeout=5)
    assert reply is not None and reply.hops == 4


async def test_wrong_network_key_never_links_and_the_node_keeps_serving() -> None:
    async with Node(Identity.generate("a"), config()) as a:
        assert a.address is not None
        intruder = Node(
            Identity.generate("x"),
            config(peers=[PeerAddress.parse(a.address)], network_key=b"\x07" * 32),
        )
        async with intruder:
            await wait_until(
                lambda: a.router.counters.get("link_closed_HandshakeError", 0) >= 2,
                what="a's rejections of the intruder",
            )
            assert not intruder.status()["links"]
            assert all(link["peer_id"] != intruder.identity.peer_id for link in a.status()["links"])
            async with Node(
                Identity.generate("b"), config(peers=[PeerAddress.parse(a.address)])
            ) as b:
                await wait_until(lambda: len(a.status()["links"]) == 1, what="b's link to a")
                reply = await b.ping(a.identity.public_key, timeout=5)
                assert reply is not None and reply.hops == 1


async def test_silent_socket_is_closed_at_the_handshake_deadline() -> None:
    cfg = config(link=LinkConfig(handshake_timeout=0.3))
    async with Node(Identity.generate("a"), cfg) as a:
        assert a.listen_url is not None
        async with ws_connect(a.listen_url, compression=None, proxy=None) as ws:
            await wait_until(lambda: a.status()["pending_handshakes"] == 1, what="pending")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert a.router.counters.get("link_closed_timeout") == 1
        assert a.status()["pending_handshakes"] == 0


async def test_a_tampered_message_opened_in_a_worker_closes_the_link_after_those_before() -> None:
    """A large websocket message is opened in a worker thread: the frames before a
    tampered one are still routed, then the link closes, counted like any framing error."""
    async with Node(Identity.generate("a"), config()) as a:
        assert a.listen_url is not None
        async with ws_connect(a.listen_url, compression=None, proxy=None) as ws:
            link = Link(
                network_key=a.config.network_key,
                identity=Identity.generate("b"),
                now=a.clock(),
                remote_key=a.identity.public_key,
                config=FAST_LINK,
            )
            await ws.send(link.data_to_send())
            while link.state is LinkState.HANDSHAKE:
                link.receive_data(await ws.recv(decode=False), a.clock())
                await ws.send(link.data_to_send())
            for _ in range(3):
                link.send(b"x" * 5000, a.clock())  # not envelopes: dropped as malformed
            await ws.send(link.data_to_send())  # 15 KB: opened in a worker
            for _ in range(3):
                link.send(b"y" * 5000, a.clock())
            tampered = bytearray(link.data_to_send())
            tampered[-100] ^= 1
            await ws.send(bytes(tampered))
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        counters = a.router.counters
        assert counters.get("link_opens_in_workers", 0) >= 2
        assert counters.get("link_closed_FrameError") == 1
        assert counters.get("received") == 3 and counters.get("dropped_malformed") == 3


async def test_handshake_cap_refuses_sockets_beyond_it() -> None:
    async with Node(Identity.generate("a"), config(max_pending_handshakes=2)) as a:
        assert a.listen_url is not None
        url = a.listen_url
        held = [await ws_connect(url, compression=None, proxy=None) for _ in range(2)]
        await wait_until(lambda: a.status()["pending_handshakes"] == 2, what="two pending")
        async with ws_connect(url, compression=None, proxy=None) as third:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(third.recv(), 5)
            assert third.close_code == 1013
        assert a.router.counters.get("refused_handshake_cap") == 1
        for ws in held:
            await ws.close()


async def test_learned_addresses_are_dialed_unless_auto_connect_is_off() -> None:
    """Peer exchange: C learns A's address from B's neighbourhood and links to A itself."""
    a = Node(Identity.generate("a"), config(auto_connect=True))
    await a.start()
    assert a.address is not None
    b = Node(
        Identity.generate("b"), config(auto_connect=True, peers=[PeerAddress.parse(a.address)])
    )
    await b.start()
    assert b.address is not None
    c = Node(
        Identity.generate("c"), config(auto_connect=True, peers=[PeerAddress.parse(b.address)])
    )
    await c.start()
    try:
        a_key = a.identity.public_key
        await wait_until(lambda: route_hops(c, a) == 1, timeout=15, what="c's own link to a")
        assert a_key in {link.peer_key for link in c.conns.values()}
    finally:
        for node in (c, b, a):
            await node.stop()


async def test_an_internal_error_costs_the_link_not_the_dialer() -> None:
    """A bug while handling a frame closes that link (counted); the dialer redials."""
    async with Node(Identity.generate("a"), config()) as a:
        assert a.address is not None
        b = Node(Identity.generate("b"), config(peers=[PeerAddress.parse(a.address)]))
        async with b:
            await wait_until(lambda: len(b.status()["links"]) == 1, what="the first link")
            receive = b.router.receive
            calls = {"n": 0}

            def broken_once(*args: object) -> object:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise RuntimeError("a bug")
                return receive(*args)  # type: ignore[arg-type]

            b.router.receive = broken_once  # type: ignore[method-assign]
            await a.ping(b.identity.public_key, timeout=0.5)  # b handles the ping: the bug
            await wait_until(
                lambda: b.router.counters.get("link_closed_internal_error") == 1,
                what="the link closed by the bug",
            )
            await wait_until(lambda: len(b.status()["links"]) == 1, what="b's dialer relinks")
            reply = await a.ping(b.identity.public_key, timeout=5)
            assert reply is not None


async def relayed_in_order(payloads: list[bytes]) -> dict[str, int]:
    """Send DATA envelopes carrying `payloads` from one end of a line of three to the other,
    check that they all arrived in the order sent, and return the relay's counters."""
    nodes = await start_line(3)
    try:
        first, relay, last = nodes
        await wait_until(lambda: route_hops(first, last) == 2, what="a 2-hop route")
        received: list[bytes] = []
        last.on_deliver(EnvelopeType.DATA, lambda envelope: received.append(envelope.payload))
        for payload in payloads:
            first.send(
                first.router.make(
                    EnvelopeType.DATA,
                    first.clock(),
                    dest_kind=DestKind.PEER,
                    dest=last.identity.public_key,
                    payload=payload,
                )
            )
        await wait_until(lambda: len(received) == len(payloads), what="all at the end")
        assert received == payloads
        return dict(relay.router.counters)
    finally:
        for node in reversed(nodes):
            await node.stop()


async def test_large_envelopes_opened_and_sealed_in_worker_threads_arrive_in_order() -> None:
    """Envelopes of 8 to 60 KiB: the relay opens what it reads and seals what it sends in
    worker threads, and every one still arrives, whole and in the order it was sent."""
    payloads = [i.to_bytes(2, "big") * (4096 + 1500 * (i % 18)) for i in range(60)]
    counters = await relayed_in_order(payloads)
    assert counters.get("link_opens_in_workers", 0) > 0
    assert counters.get("link_seals_in_workers", 0) > 0
    assert counters.get("relayed", 0) == len(payloads)


async def test_a_burst_checked_in_worker_threads_is_routed_whole_and_in_order() -> None:
    """Hundreds of envelopes at once: the relay checks their signatures in worker threads
    and still hands every one on in the order it came."""
    payloads = [i.to_bytes(2, "big") * (1 + i % 700) for i in range(600)]  # 2 B .. 1.4 KB
    counters = await relayed_in_order(payloads)
    assert counters.get("signatures_checked_in_workers", 0) >= 16
    assert counters.get("relayed", 0) == len(payloads)
