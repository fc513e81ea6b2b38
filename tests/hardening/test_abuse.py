"""Issue 17, holes 4-6 over real nodes: free requests, strangers' room logs, replays.

Each test puts a hostile peer on a real link to a real daemon on 127.0.0.1 and
checks the defence through what the peers see and what ``status`` counts.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgpack

from mesh.storage.mailbox import MailboxLimits
from mesh.storage.pool import ROW_OVERHEAD
from mesh.storage.roomlog import RoomLogLimits
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, encode_peer_id
from sim.hostile import HostileLink, befriend, linked, start_daemon
from tests.conftest import wait_until


def random_envelope(
    author: Identity, type: int, dest_kind: DestKind, dest: bytes, seq: int, size: int, now: float
) -> Envelope:
    """A signed envelope of `type` with `size` random bytes of payload."""
    return Envelope.create(
        author,
        type,
        dest_kind=dest_kind,
        dest=dest,
        timestamp_ms=int(now * 1000),
        seq=seq,
        payload=os.urandom(size),
    )


def room_envelope(author: Identity, room: bytes, seq: int, size: int, now: float) -> Envelope:
    return random_envelope(author, EnvelopeType.NOTE, DestKind.ROOM, room, seq, size, now)


def inventory(asker: Identity, rooms: dict[bytes, dict[bytes, int]], seq: int) -> bytes:
    return Envelope.create(
        asker,
        EnvelopeType.INVENTORY,
        timestamp_ms=int(time.time() * 1000),
        seq=seq,
        payload=msgpack.packb(rooms),
        hop_limit=1,
    ).encode()


def room_entries(frames: list[bytes], room: bytes) -> list[Envelope]:
    found = []
    for frame in frames:
        try:
            envelope = Envelope.decode(frame)
        except Exception:
            continue
        if envelope.dest_kind == DestKind.ROOM and envelope.dest == room:
            found.append(envelope)
    return found


async def test_repeated_inventories_are_answered_once_in_bounded_pages(tmp_path: Path) -> None:
    """Hole 4: a neighbour asks 100 times for a 2,000-entry room log with an empty vector."""
    b = await start_daemon(tmp_path, "b")
    a = await start_daemon(tmp_path, "a", dial=[b.node.address or ""])
    c = await start_daemon(tmp_path, "c", dial=[b.node.address or ""])
    writer, room = Identity.generate("writer"), os.urandom(32)
    hostile = HostileLink(Identity.generate("asker"))
    try:
        assert b.node.roomlog is not None
        now = time.time()
        for seq in range(1, 2001):
            b.node.roomlog.keep(room_envelope(writer, room, seq, 600, now), now)
        await wait_until(lambda: linked(b, a) and linked(b, c), what="a-b-c")
        await befriend(a, c)
        await hostile.open(b.node.address or "")
        for seq in range(1, 101):
            await hostile.send(inventory(hostile.identity, {room: {}}, seq))
        a.chat.send_direct(c.node.identity.peer_id, "past the flood")
        await wait_until(
            lambda: len({e.seq for e in room_entries(hostile.received, room)}) == 2000,
            timeout=30,
            what="the whole log at the asker",
        )
        await wait_until(
            lambda: a.chat.history(c.node.identity.peer_id)[0]["status"] == "delivered",
            timeout=30,
            what="the DM through b, and its receipt",
        )
        # every entry went once: the 99 repeats were coalesced or found nothing new to send
        counters = b.node.router.counters
        await wait_until(
            lambda: (
                counters.get("inventory_coalesced", 0) + counters.get("inventory_answered_empty", 0)
                >= 99
            ),
            what="every repeat dealt with",
        )
        status = b.node.status()
        assert len(room_entries(hostile.received, room)) == 2000
        assert status["counters"]["roomlog_sent"] == 2000
        assert set(status["loop_lag_ms"]) >= {"p99", "max"}
    finally:
        await hostile.close()
        for d in (c, a, b):
            await d.stop()


async def test_a_stranger_flooding_fresh_rooms_stays_in_the_pool(tmp_path: Path) -> None:
    """Hole 5: fresh room ids fill only the stranger pool; a member room keeps its log."""
    b = await start_daemon(tmp_path, "b")
    member, room = Identity.generate("member"), os.urandom(32)
    pool = 256 * 1024
    assert b.node.roomlog is not None
    b.node.roomlog.limits = RoomLogLimits(max_rooms=50, stranger_bytes=pool)
    b.node.set_room_interests(lambda: [room])  # b has joined this room (as chat would say)
    honest, flooder = HostileLink(member), HostileLink(Identity.generate("flooder"))
    try:
        await honest.open(b.node.address or "")
        now = time.time()
        await honest.send(
            *[room_envelope(member, room, s, 500, now).encode() for s in range(1, 21)]
        )
        await wait_until(
            lambda: (
                b.node.roomlog is not None
                and b.node.roomlog.vector(room) == {member.public_key: 20}
            ),
            what="the member room's log at b",
        )
        await honest.close()
        await flooder.open(b.node.address or "")
        strangers = [os.urandom(32) for _ in range(200)]
        flood = [
            room_envelope(flooder.identity, r, s, 2000, now).encode()
            for r in strangers
            for s in (1, 2, 3, 4)
        ]
        for start in range(0, len(flood), 50):
            await flooder.send(*flood[start : start + 50])
            await asyncio.sleep(0)
        await wait_until(
            lambda: b.node.roomlog is not None and b.node.roomlog.vector(strangers[-1]),
            timeout=30,
            what="the last of the flood at b",
        )
        assert b.node.roomlog.vector(room) == {member.public_key: 20}
        held = b.node.roomlog.store.query(
            "SELECT COALESCE(SUM(size), 0) + COUNT(*) * ? AS b FROM room_log WHERE room_id != ?",
            (ROW_OVERHEAD, encode_peer_id(room)),
        )[0]["b"]
        assert 0 < held <= pool  # the flood sent about 1.8 MB
        status = await b._status({})
        assert status["counters"]["roomlog_evicted_stranger_pool"] > 0
        assert status["caches"]["room_log"]["stranger_bytes"] <= pool
        # the member comes back with nothing and catches up from b
        back = HostileLink(member)
        await back.open(b.node.address or "")
        await back.send(inventory(member, {room: {}}, 100))
        await wait_until(
            lambda: {e.seq for e in room_entries(back.received, room)} == set(range(1, 21)),
            what="the member's catch-up",
        )
        await back.close()
    finally:
        await flooder.close()
        await b.stop()


async def test_a_replayed_dm_is_receipted_once_and_bans_the_replayer(tmp_path: Path) -> None:
    """Hole 6: a captured DM replayed 300 times costs the replayer, not the recipient."""
    a = await start_daemon(tmp_path, "a")
    b = await start_daemon(tmp_path, "b", dial=[a.node.address or ""])
    captured: list[Envelope] = []
    receipts: list[Envelope] = []
    b.node.on_deliver(EnvelopeType.CHAT, captured.append)
    a.node.on_deliver(EnvelopeType.RECEIPT, receipts.append)
    hostile = HostileLink(Identity.generate("replayer"))
    try:
        await wait_until(lambda: linked(a, b), what="a-b")
        await befriend(a, b)
        a.chat.send_direct(b.node.identity.peer_id, "once")
        await wait_until(
            lambda: a.chat.history(b.node.identity.peer_id)[0]["status"] == "delivered",
            what="the DM's receipt",
        )
        wire = captured[0].encode()
        await hostile.open(b.node.address or "")
        replays = 0
        while not hostile.closed and replays < 3000:  # 100 replays within 30 s ban the link
            await hostile.send(*[wire] * 10)
            replays += 10
            await asyncio.sleep(0.01)
        await wait_until(lambda: hostile.closed, what="the replayer's link closed")
        a.chat.send_direct(b.node.identity.peer_id, "after")  # its receipt comes after any other
        await wait_until(
            lambda: all(
                m["status"] == "delivered" for m in a.chat.history(b.node.identity.peer_id)
            ),
            what="the second DM's receipt",
        )
        assert len(receipts) <= 3  # the DM's, at most one for a replay, the second DM's
        status = await b._status({})
        assert status["counters"]["dropped_replayed"] > 0
        assert status["counters"]["bans"] == 1
        assert hostile.identity.peer_id in status["bans"]
        assert [m["text"] for m in b.chat.history(a.node.identity.peer_id)] == ["once", "after"]
    finally:
        await hostile.close()
        await b.stop()
        await a.stop()


def mail(author: Identity, dest: bytes, seq: int, size: int, now: float) -> Envelope:
    return random_envelope(author, EnvelopeType.CHAT, DestKind.PEER, dest, seq, size, now)


async def test_a_stranger_flooding_mail_stays_in_the_pool_and_a_contacts_mail_stays(
    tmp_path: Path,
) -> None:
    """Hole 5, mailboxes: mail for made-up peers fills only the stranger pool; mail kept for
    one of the relay's contacts, who is away, is never evicted for it."""
    b = await start_daemon(tmp_path, "b")
    carol, friend = Identity.generate("carol"), Identity.generate("friend")
    b.chat.contacts.add(carol.peer_id)
    pool = 256 * 1024
    assert b.node.mailbox is not None
    b.node.mailbox.limits = MailboxLimits(stranger_bytes=pool, total_bytes=pool * 2)
    honest, flooder = HostileLink(friend), HostileLink(Identity.generate("flooder"))
    try:
        await honest.open(b.node.address or "")
        now = time.time()
        for_carol = [mail(friend, carol.public_key, s, 2000, now) for s in range(1, 21)]
        await honest.send(*(e.encode() for e in for_carol))
        await wait_until(
            lambda: (
                b.node.mailbox is not None and len(b.node.mailbox.handover(carol.public_key)) == 20
            ),
            what="b keeps carol's mail",
        )
        await honest.close()
        await flooder.open(b.node.address or "")
        flood = [
            mail(flooder.identity, os.urandom(32), s, 3000, now).encode() for s in range(1, 401)
        ]
        for start in range(0, len(flood), 20):  # 60 kB a websocket message
            await flooder.send(*flood[start : start + 20])
            await asyncio.sleep(0)
        await wait_until(
            lambda: (
                b.node.mailbox is not None
                and b.node.mailbox.counters.get("mailbox_evicted_stranger_pool", 0) > 0
                and b.node.mailbox.handover(Envelope.decode(flood[-1]).dest)
            ),
            timeout=30,
            what="the flood's last envelope kept, older ones evicted",
        )
        status = await b._status({})
        assert status["caches"]["mailbox"]["stranger_bytes"] <= pool  # the flood sent 1.2 MB
        held = b.store.query(
            "SELECT COALESCE(SUM(size), 0) + COUNT(*) * ? AS b FROM mailbox WHERE stranger = 1",
            (ROW_OVERHEAD,),
        )[0]["b"]
        assert 0 < held <= pool
        assert [e.message_id for e in b.node.mailbox.handover(carol.public_key)] == [
            e.message_id for e in for_carol
        ]
    finally:
        await flooder.close()
        await b.stop()
