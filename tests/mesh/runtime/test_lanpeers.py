"""LAN discovery's decisions (mesh/runtime/lanpeers.py): which found services get dialed."""

from __future__ import annotations

from mesh.runtime.lanpeers import DIAL_GRACE, RECORD_VERSION, Announcement, LanPeers, mesh_tag
from mesh.wire.identity import Identity
from mesh.wire.netkey import DEFAULT_NETWORK_KEY

ME = Identity.from_seed(b"m" * 32)
LOW = Identity.from_seed(b"l" * 32)
HIGH = Identity.from_seed(b"h" * 32)
TAG = mesh_tag(DEFAULT_NETWORK_KEY)


def service(
    who: Identity, tag: str = TAG, addresses: tuple[str, ...] = ("10.1.0.2",)
) -> Announcement:
    return Announcement(who.peer_id, tag, addresses, 7450)


def test_the_tag_is_short_stable_and_not_the_key() -> None:
    key = bytes(range(32))
    assert mesh_tag(key) == mesh_tag(key)
    assert len(mesh_tag(key)) == 16 and mesh_tag(key) != mesh_tag(bytes(32))
    assert key.hex()[:16] not in mesh_tag(key)


def test_a_peer_of_our_mesh_is_dialed_at_its_announced_address() -> None:
    peers = LanPeers(ME.public_key, TAG)
    address = peers.found(service(LOW), now=100.0)
    assert address is not None
    assert str(address) == f"ws://10.1.0.2:7450#{LOW.peer_id}"
    assert peers.status() == [{"peer_id": LOW.peer_id, "address": str(address), "seen": 100}]


def test_ourselves_and_other_meshes_are_never_dialed() -> None:
    peers = LanPeers(ME.public_key, TAG)
    assert peers.found(service(ME), now=1.0) is None
    assert peers.found(service(LOW, tag=mesh_tag(bytes(32))), now=1.0) is None
    assert peers.status() == []
    assert peers.counters == {"lan_skipped_other_mesh": 1}


def test_malformed_records_and_unusable_addresses_are_skipped() -> None:
    peers = LanPeers(ME.public_key, TAG)
    assert (
        Announcement.from_record({b"v": b"1", b"id": b"nope", b"mesh": TAG.encode()}, [], 1) is None
    )
    assert Announcement.from_record({b"v": b"2", b"id": LOW.peer_id.encode()}, [], 1) is None
    assert Announcement.from_record({b"v": b"\xff"}, [], 1) is None
    assert peers.found(None, now=1.0) is None
    assert peers.found(service(LOW, addresses=("127.0.0.1", "169.254.1.1")), now=1.0) is None
    assert peers.counters == {"lan_skipped_malformed": 1, "lan_skipped_no_address": 1}


def test_a_record_read_back_from_its_txt_properties() -> None:
    sent = service(LOW, addresses=("fe80::1", "10.1.0.2"))
    txt = {k.encode(): v.encode() for k, v in sent.properties().items()}
    assert txt[b"v"] == RECORD_VERSION.encode()
    assert Announcement.from_record(txt, sent.addresses, sent.port) == sent


def test_routable_ipv4_is_preferred() -> None:
    peers = LanPeers(ME.public_key, TAG)
    address = peers.found(service(LOW, addresses=("fd00::2", "10.1.0.2")), now=1.0)
    assert address is not None and address.host == "10.1.0.2"


def test_a_linked_or_dialed_peer_is_not_dialed_again() -> None:
    peers = LanPeers(ME.public_key, TAG)
    assert peers.found(service(LOW), now=1.0, busy=lambda key: key == LOW.public_key) is None
    assert [p["peer_id"] for p in peers.status()] == [LOW.peer_id]  # still listed


def test_when_both_announce_the_smaller_id_dials_and_the_other_waits() -> None:
    peers = LanPeers(ME.public_key, TAG)
    peers.announced = True
    for who in (LOW, HIGH):
        dialed = peers.found(service(who), now=1.0)
        assert (dialed is not None) == (ME.peer_id < who.peer_id)
    # a peer that should have dialed us and did not is dialed after the grace period
    assert peers.to_redial(1.0 + DIAL_GRACE / 2, lambda key: False) == []
    redial = peers.to_redial(1.0 + DIAL_GRACE, lambda key: False)
    assert {a.peer_key for a in redial} == {LOW.public_key, HIGH.public_key}
    assert peers.to_redial(1.0 + DIAL_GRACE, lambda key: True) == []


def test_goodbyes_and_old_sightings_are_forgotten() -> None:
    peers = LanPeers(ME.public_key, TAG, ttl=60.0)
    peers.found(service(LOW), now=0.0)
    peers.found(service(HIGH), now=50.0)
    peers.lost(HIGH.peer_id)
    assert [p["peer_id"] for p in peers.status()] == [LOW.peer_id]
    peers.expire(61.0)
    assert peers.status() == []
