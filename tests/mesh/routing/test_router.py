"""Tests for mesh.routing.router: the rules for each frame, status and determinism."""

from __future__ import annotations

import json

import pytest

from mesh.errors import EnvelopeError, UsageError
from mesh.routing.admission import PENALTIES
from mesh.routing.replay import REPLAY_CAPACITY
from mesh.routing.router import RouterConfig, Send, check_signatures
from mesh.routing.tables import unpack_table
from mesh.wire.envelope import FLAG_FLOOD, MAX_HOPS, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import encode_peer_id
from sim.network import Network, SimNode
from tests.mesh.routing.steps import GHOST, config, counter, data, flip

# -- hop limit -------------------------------------------------------------------


@pytest.mark.parametrize("flags", [0, FLAG_FLOOD])
def test_hop_limit_stops_an_envelope_one_link_short_of_its_destination(flags: int) -> None:
    net = Network(config())
    a, _, c, d = net.line("a", "b", "c", "d")

    net.originate("a", data(a, net.now, d.key, b"too far", hop_limit=2, flags=flags))
    net.run_until_idle()
    assert not d.delivered
    assert counter(c, "dropped_hop_limit") == 1

    net.originate("a", data(a, net.now, d.key, b"just right", hop_limit=3, flags=flags))
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"just right"]


def test_decode_rejects_a_hop_limit_above_max_hops() -> None:
    node = Network(config()).add("a")
    wire = data(node, 1_700_000_000.0, GHOST.public_key, hop_limit=MAX_HOPS).encode()
    assert Envelope.decode(wire).hop_limit == MAX_HOPS

    hop_limit_at = 4  # hops, version, type, flags, hop_limit
    too_many = wire[:hop_limit_at] + bytes([MAX_HOPS + 1]) + wire[hop_limit_at + 1 :]
    with pytest.raises(EnvelopeError, match="hop limit"):
        Envelope.decode(too_many)
    with pytest.raises(EnvelopeError, match="hop count"):
        Envelope.decode(bytes([MAX_HOPS + 1]) + wire[1:])
    with pytest.raises(UsageError):
        data(node, 1_700_000_000.0, GHOST.public_key, hop_limit=MAX_HOPS + 1)


# -- dedup cache -----------------------------------------------------------------


def ping(node: SimNode, now: float, dest: bytes, payload: bytes = b"12345678") -> Envelope:
    """A PING: a type the mailbox never stores, so the plain dedup rule applies."""
    return node.router.make(
        EnvelopeType.PING, now, dest_kind=DestKind.PEER, dest=dest, payload=payload
    )


def test_the_same_envelope_twice_is_delivered_once() -> None:
    net = Network(config())
    a, b = net.line("a", "b")
    wire = ping(a, net.now, b.key).encode()

    net.inject("a", "b", wire)
    net.inject("a", "b", wire)
    net.inject("a", "b", bytes([1]) + wire[1:])  # the hop count is outside the id
    net.run_until_idle()

    assert len(b.delivered) == 1
    assert counter(b, "dropped_duplicate") == 2


def test_a_stored_type_seen_again_is_handed_up_again_for_a_new_receipt() -> None:
    """A mailbox handing over a copy we had: the layer above must see it to receipt again."""
    net = Network(config())
    a, b = net.line("a", "b")
    wire = data(a, net.now, b.key).encode()
    net.inject("a", "b", wire)
    net.inject("a", "b", flip(wire, len(wire) - 1))  # same id, forged signature: not handed up
    net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 2
    assert counter(b, "redelivered") == 1
    assert counter(b, "dropped_duplicate") == 1


def test_a_redelivery_replayed_within_the_interval_is_dropped_and_charged() -> None:
    """Once handed up again, the same envelope is not handed up again for REPLAY_INTERVAL."""
    net = Network(config())
    a, b = net.line("a", "b")
    wire = data(a, net.now, b.key).encode()
    for _ in range(4):
        net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 2  # the first time, and one redelivery
    assert counter(b, "dropped_replayed") == 2
    assert b.router.penalties[a.key].score == 2 * PENALTIES["replayed"]


def test_relays_keep_stored_types_for_peers_that_are_not_neighbours() -> None:
    net = Network(config())
    a, b, c, d = net.line("a", "b", "c", "d")
    net.originate("a", data(a, net.now, d.key))
    net.originate("a", ping(a, net.now, d.key))  # pings are never kept
    net.run_until_idle()

    assert [k.envelope.dest for k in b.kept] == [d.key]  # d is two links beyond b
    assert b.kept[0].store is True
    assert not c.kept  # c hands it to its neighbour d directly
    assert len(d.delivered) == 2


def test_the_seen_cache_honours_its_capacity() -> None:
    net = Network(config(seen_capacity=3))
    a, b = net.line("a", "b")
    evicted, held = b.router.seen.evicted, len(b.router.seen)
    wires = [ping(a, net.now, b.key, bytes([i])).encode() for i in range(5)]

    for wire in wires:
        net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 5
    assert len(b.router.seen) == 3
    assert b.router.seen.evicted - evicted == held + 5 - 3
    assert b.router.status(net.now)["caches"]["seen_ids"] == {"size": 3, "bound": 3}
    net.inject("a", "b", wires[-1])  # still remembered
    net.run_until_idle()
    assert counter(b, "dropped_duplicate") == 1


def test_seen_ids_expire_after_the_ttl() -> None:
    net = Network(config(seen_ttl=10.0))
    a, b = net.line("a", "b")
    envelope = data(a, net.now, b.key)
    net.inject("a", "b", envelope.encode())
    net.run_until_idle()
    assert b.router.seen.seen(envelope.message_id, net.now)

    net.advance(9)
    assert b.router.seen.seen(envelope.message_id, net.now)
    net.advance(2)
    assert not b.router.seen.seen(envelope.message_id, net.now)
    net.run_until_idle()
    assert len(b.router.seen) < 3  # the tick dropped old ids, only fresh announces remain

    net.inject("a", "b", envelope.encode())
    net.run_until_idle()
    assert len(b.delivered) == 2
    assert counter(b, "dropped_duplicate") == 0


# -- timestamp window -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "reason"), [(-3601.0, "stale"), (61.0, "future"), (-3599.0, None), (59.0, None)]
)
def test_envelopes_outside_the_timestamp_window_are_dropped(
    offset: float, reason: str | None
) -> None:
    net = Network(config(max_age=3600.0, max_future=60.0))
    a, b = net.line("a", "b")

    net.inject("a", "b", data(a, net.now + offset, b.key).encode())
    net.run_until_idle()

    if reason is None:
        assert len(b.delivered) == 1
    else:
        assert not b.delivered
        assert counter(b, f"dropped_{reason}") == 1


# -- signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["signature", "payload"])
def test_a_forged_envelope_is_neither_delivered_nor_forwarded(where: str) -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    envelope = data(a, net.now, c.key, b"payload")
    wire = envelope.encode()
    index = len(wire) - 1 if where == "signature" else len(wire) - 64 - 1
    sent = net.transmissions

    net.inject("a", "b", flip(wire, index))
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 1
    assert net.transmissions - sent == 1  # only the forged copy itself
    assert not b.delivered and not c.delivered

    net.inject("a", "b", wire)  # the forgery did not poison the dedup cache
    net.run_until_idle()
    assert [e.message_id for e in c.envelopes] == [envelope.message_id]


def test_a_neighbours_own_notice_rides_on_the_link_but_one_naming_another_author_is_checked() -> (
    None
):
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    assert b.router.route_to(c.key, net.now) is not None
    own = a.router.make(EnvelopeType.WITHDRAW, net.now, payload=c.key, hop_limit=1).encode()
    net.inject("a", "b", flip(own, len(own) - 1))  # the link vouches for a: no check
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 0

    ghost = Network(config()).add("ghost").router  # an author who is not on the link
    relayed = ghost.make(EnvelopeType.WITHDRAW, net.now, payload=c.key, hop_limit=1).encode()
    net.inject("a", "b", flip(relayed, len(relayed) - 1))
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 1
    assert b.router.route_to(ghost.identity.public_key, net.now) is None  # no path learned


def test_an_announce_signed_by_one_key_for_another_author_is_rejected() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    honest = a.router.make(EnvelopeType.ANNOUNCE, net.now)
    author_at = 4  # version, type, flags, hop_limit
    signed = honest.signed_bytes
    signed = signed[:author_at] + GHOST.public_key + signed[author_at + 32 :]
    forged = bytes([0]) + signed + a.router.identity.sign(signed)
    assert Envelope.decode(forged).author == GHOST.public_key
    sent = net.transmissions

    net.inject("a", "b", forged)
    net.run_until_idle()

    assert counter(b, "dropped_bad_signature") == 1
    assert b.router.route_to(GHOST.public_key, net.now) is None
    assert c.router.route_to(GHOST.public_key, net.now) is None
    assert net.transmissions - sent == 1


# -- status ------------------------------------------------------------------------------


def test_status_reports_routes_counters_and_bounded_caches() -> None:
    net = Network(config(route_ttl=90.0))
    a, b, c = net.line("a", "b", "c")

    status = a.router.status(net.now)

    assert json.loads(json.dumps(status)) == status
    peer = encode_peer_id
    assert [(r["dest"], r["next_hop"], r["hops"]) for r in status["routes"]] == [
        (peer(b.key), peer(b.key), 1),
        (peer(c.key), peer(b.key), 2),
    ]
    assert status["routes"][1]["expires_in"] == 90.0
    assert status["counters"]["received"] == counter(a, "received") > 0
    assert status["caches"] == {
        "seen_ids": {"size": len(a.router.seen), "bound": 1000},
        "routes": {"size": 2, "bound": 100},
        "bans": {"size": 0, "bound": RouterConfig().max_bans},
        "parked": {"size": 0, "bound": RouterConfig().max_parked},
        "redeliveries": {"size": 0, "bound": REPLAY_CAPACITY},
    }
    assert status["bans"] == []


def test_link_up_sends_an_announce_and_the_stored_ones() -> None:
    net = Network(config())
    _, b, c = net.line("a", "b", "c")
    link = 4242
    actions = b.router.link_up(link, GHOST.public_key, net.now)
    assert all(isinstance(x, Send) and x.link == link for x in actions)
    own, table = (Envelope.decode(x.data) for x in actions if isinstance(x, Send))
    assert (own.type, own.author) == (EnvelopeType.ANNOUNCE, b.key)
    # the stored announces travel in one TABLE, each at b's distance to its author
    assert (table.type, table.author, table.hop_limit) == (EnvelopeType.TABLE, b.key, 1)
    stored = [Envelope.decode(frame) for frame in unpack_table(table.payload)]
    assert sorted((e.author, e.hops) for e in stored) == sorted(
        [(net.node("a").key, 1), (c.key, 1)]
    )
    assert all(e.type == EnvelopeType.ANNOUNCE for e in stored)


def test_the_same_scenario_sends_the_same_bytes_every_run() -> None:
    def run() -> tuple[int, list[bytes], dict[str, int]]:
        net = Network(config(announce_jitter=0.2))
        nodes = net.line("n0", "n1", "n2")
        for _ in range(5):
            net.advance(17)
            net.run_until_idle()
        net.originate("n0", data(nodes[0], net.now, nodes[2].key))
        net.run_until_idle()
        signatures = [e.signature for e in nodes[2].envelopes]
        return net.transmissions, signatures, nodes[1].router.counters

    assert run() == run()


def test_signatures_checked_ahead_in_a_batch_give_the_same_verdicts() -> None:
    """check_signatures (run in worker threads by the node) agrees with the inline check."""
    net = Network(config())
    a, b = net.line("a", "b")
    good = data(a, net.now, b.key, b"good").encode()
    forged = flip(data(a, net.now, b.key, b"forged").encode(), 60)
    garbage = b"\x00\x01 not an envelope"
    assert check_signatures([good, forged, garbage]) == [True, False, None]

    link = b.links["a"]
    for wire, verdict in zip(
        [good, forged, garbage], check_signatures([good, forged, garbage]), strict=True
    ):
        b.router.receive(link, wire, net.now, verdict)
    assert counter(b, "dropped_bad_signature") == 1
    assert counter(b, "dropped_malformed") == 1
    assert counter(b, "delivered") == 1


def test_a_room_envelope_made_with_no_link_goes_out_on_every_link_once_they_settle() -> None:
    from mesh.wire.envelope import DestKind, EnvelopeType
    from sim.network import Network
    from tests.mesh.routing.steps import config, counter, settle

    net = Network(config())
    for name in "abc":
        net.add(name)
    settle(net)
    a = net.nodes["a"]
    room = bytes(32)
    note = a.router.make(EnvelopeType.NOTE, net.now, dest_kind=DestKind.ROOM, dest=room)
    net.originate("a", note)  # no link: kept, not lost
    assert counter(a, "room_held_for_links") == 1
    net.connect("a", "b")
    net.run_until_idle()
    net.connect("a", "c")
    net.run_until_idle()
    assert not net.nodes["b"].envelopes and not net.nodes["c"].envelopes
    net.advance(a.router.config.link_settle)
    net.run_until_idle()
    for name in "bc":  # each neighbour gets it from a, not only the first one back
        assert [e.message_id for e in net.nodes[name].envelopes] == [note.message_id]
    assert counter(a, "room_sent_after_links") == 1 and not a.router.unsent
