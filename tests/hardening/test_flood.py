"""Threats 4 and 5 over real nodes: a flooding peer, and a relay that lies about paths."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chat.outbox import RetryPolicy
from mesh.routing.router import Keep, RouterConfig, Send
from mesh.wire.envelope import EnvelopeType
from mesh.wire.identity import Identity
from sim.hostile import HostileLink, befriend, full_or_ci, linked, start_daemon
from tests.conftest import wait_until
from tests.hardening.conftest import record


def texts(daemon, peer) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["text"] for m in daemon.chat.history(peer.node.identity.peer_id)]


async def test_a_flood_from_a_thousand_identities_is_throttled_then_banned(
    tmp_path: Path,
) -> None:
    """One link sends at 10x its rate limit, announcing a thousand fresh identities."""
    limits = RouterConfig(link_rate=50.0, link_burst=50.0, max_routes=300, seen_capacity=2000)
    b = await start_daemon(tmp_path, "b", router=limits)
    a = await start_daemon(tmp_path, "a", dial=[b.node.address or ""])
    c = await start_daemon(tmp_path, "c", dial=[b.node.address or ""])
    hostile = HostileLink(Identity.generate("flooder"))
    try:
        await wait_until(lambda: linked(b, a) and linked(b, c), what="a-b-c")
        await befriend(a, c)
        await hostile.open(b.node.address or "")
        now = time.time()
        fresh = [Identity.generate() for _ in range(full_or_ci(10_000, 1000))]
        flood = [hostile.envelope(EnvelopeType.ANNOUNCE, now, author=i).encode() for i in fresh]
        a.chat.send_direct(c.node.identity.peer_id, "through the storm")
        sent = 0
        started = time.monotonic()
        while not hostile.closed and sent < len(flood):
            await hostile.send(*flood[sent : sent + 50])  # 50 per 0.1 s: 10x the 50/s limit
            sent += 50
            await asyncio.sleep(0.1)  # the attacker's pace
        await wait_until(lambda: hostile.closed, what="the flooder's link closed")
        counters = b.node.router.counters
        assert counters["dropped_rate_limited"] > 0 and counters["bans"] == 1
        assert hostile.identity.peer_id in b.node.status()["bans"]
        assert time.monotonic() - started < 10
        caches = b.node.status()["caches"]
        for name in ("seen_ids", "routes", "bans"):
            assert caches[name]["size"] <= caches[name]["bound"], (name, caches[name])
        await wait_until(lambda: texts(c, a) == ["through the storm"], what="the DM at c")
        await wait_until(
            lambda: a.chat.history(c.node.identity.peer_id)[0]["status"] == "delivered",
            what="its receipt at a",
        )
        record(
            "flood",
            {
                "identities": len(fresh),
                "sent": sent,
                "bans": counters["bans"],
                "rate_limited": counters["dropped_rate_limited"],
                "banned_after_s": round(time.monotonic() - started, 2),
            },
        )
    finally:
        await hostile.close()
        for d in (c, a, b):
            await d.stop()


def swallow_relayed_chat(daemon) -> list[int]:  # type: ignore[no-untyped-def]
    """Make `daemon` a lying relay: it routes as usual but drops the chat traffic it relays."""
    router = daemon.node.router
    receive = router.receive
    swallowed: list[int] = []

    def lying_receive(link: int, data: bytes, now: float, signature_ok=None, message_id=None):  # type: ignore[no-untyped-def]
        actions = receive(link, data, now, signature_ok, message_id)
        kept = []
        for action in actions:
            data_type = action.data[2] if isinstance(action, Send) else None
            if isinstance(action, Keep) or (data_type is not None and data_type >= 17):
                swallowed.append(data_type or 0)
                continue
            kept.append(action)
        return kept

    router.receive = lying_receive
    return swallowed


async def test_a_relay_that_swallows_traffic_cannot_blackhole_a_dm(tmp_path: Path) -> None:
    """S - L - D is the short path, with L swallowing; S - R - X - D the honest long one."""
    d = await start_daemon(tmp_path, "d")
    liar = await start_daemon(tmp_path, "liar", dial=[d.node.address or ""])
    x = await start_daemon(tmp_path, "x", dial=[d.node.address or ""])
    r = await start_daemon(tmp_path, "r", dial=[x.node.address or ""])
    s = await start_daemon(tmp_path, "s", dial=[liar.node.address or "", r.node.address or ""])
    everyone = (s, r, x, liar, d)
    try:
        swallowed = swallow_relayed_chat(liar)
        s.chat.outbox.policy = RetryPolicy(initial_delay=0.3, max_delay=2.0, flood_after=2)
        await befriend(s, d)
        dest = d.node.identity.public_key
        await wait_until(
            lambda: (
                (route := s.node.router.route_to(dest, s.node.clock())) is not None
                and route.next_hop == liar.node.identity.public_key
                and route.hops == 2
            ),
            what="s routes to d through the liar",
        )
        s.chat.send_direct(d.node.identity.peer_id, "first")
        await wait_until(lambda: texts(d, s) == ["first"], what="the DM around the liar")
        assert swallowed, "the liar never saw the DM: the test proves nothing"
        await wait_until(
            lambda: s.chat.history(d.node.identity.peer_id)[0]["status"] == "delivered",
            what="the receipt around the liar",
        )
        # the path is now suspect: the next DM floods from its first try and needs no retry
        s.chat.send_direct(d.node.identity.peer_id, "second")
        await wait_until(lambda: texts(d, s) == ["first", "second"], timeout=2, what="second DM")
        assert s.chat.outbox.flooded_suspect >= 1
    finally:
        for daemon in everyone:
            await daemon.stop()
