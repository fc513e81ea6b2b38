"""Tests for chat.contacts: nicknames, the verified flag, safety numbers, and naming peers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from chat.contacts import MAX_NAME, Contacts, check_peer_key
from mesh.errors import PeerNameError, UsageError
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.identity import Identity, encode_peer_id, safety_number

ME = Identity.from_seed(bytes([2]) * 32)  # qe4x...
BOB = Identity.from_seed(bytes([1]) * 32)  # rkeo...
RANDALL = Identity.from_seed(bytes([6]) * 32)  # rkdv...: shares "rk" with bob
CAROL = Identity.from_seed(bytes([3]) * 32)  # 5ves...
DAVE = Identity.from_seed(bytes([4]) * 32)  # zkj2...
T0 = 1_700_000_000.0


@dataclass
class StubNode:
    """The three things Contacts reads from its Node.

    A real Node builds a router, asyncio events and network configuration, and
    its known peers come from live routes; Contacts only needs the identity,
    the clock, and the set of peers the node knows, which a test sets directly.
    """

    identity: Identity
    peers: set[bytes] = field(default_factory=set)
    now: float = T0

    def clock(self) -> float:
        return self.now

    def known_peers(self) -> set[bytes]:
        return set(self.peers)


def contacts_of(identity: Identity, peers: set[bytes] | None = None) -> Contacts:
    node = StubNode(identity, peers or set())
    return Contacts(cast(Node, node), Store(None))


@pytest.fixture
def contacts() -> Contacts:
    return contacts_of(ME, {BOB.public_key, RANDALL.public_key})


def row(contacts: Contacts, peer: Identity) -> dict[str, Any]:
    return contacts.store.query("SELECT * FROM contacts WHERE peer_id = ?", (peer.peer_id,))[0]


def test_the_fixture_ids_have_the_prefixes_the_tests_rely_on() -> None:
    assert BOB.peer_id[:2] == RANDALL.peer_id[:2] == "rk"
    assert BOB.peer_id[:3] != RANDALL.peer_id[:3]
    assert not CAROL.peer_id.startswith("rk") and not DAVE.peer_id.startswith("rk")


# --- add, rename, verify ---------------------------------------------------------------


def test_add_stores_a_contact_with_its_nickname(contacts: Contacts) -> None:
    view = contacts.add(BOB.peer_id, "bob")
    assert view == {
        "peer_id": BOB.peer_id,
        "name": "bob",
        "own_name": None,
        "display_name": "bob",
        "verified": False,
        "blocked": False,
        "safety_number": safety_number(ME.public_key, BOB.public_key),
    }
    assert contacts.is_contact(BOB.peer_id)
    assert row(contacts, BOB)["added_at"] == T0


def test_add_without_a_nickname(contacts: Contacts) -> None:
    assert contacts.add(CAROL.peer_id)["name"] is None
    assert contacts.is_contact(CAROL.peer_id)


def test_adding_again_renames_and_keeps_the_name_when_none_is_given(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    assert contacts.add(BOB.peer_id, "  robert  ")["name"] == "robert"
    assert contacts.add(BOB.peer_id)["name"] == "robert"
    assert [c["peer_id"] for c in contacts.all()] == [BOB.peer_id]


def test_a_nickname_belongs_to_one_contact(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    with pytest.raises(UsageError, match="'bob' is taken by rkeohxlu"):
        contacts.add(CAROL.peer_id, "bob")
    assert not contacts.is_contact(CAROL.peer_id)
    assert contacts.add(BOB.peer_id, "bob")["name"] == "bob"  # keeping one's own is fine


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME + 1)], ids=["empty", "blank", "long"])
def test_a_nickname_has_1_to_max_name_characters(contacts: Contacts, name: str) -> None:
    with pytest.raises(UsageError, match=r"nickname has 1\.\.100 characters"):
        contacts.add(BOB.peer_id, name)
    assert not contacts.is_contact(BOB.peer_id)


def test_you_cannot_add_yourself(contacts: Contacts) -> None:
    with pytest.raises(UsageError, match="cannot add yourself"):
        contacts.add(ME.peer_id, "me")
    assert contacts.all() == []


def test_adding_a_contact_accepts_its_direct_conversation_request(contacts: Contacts) -> None:
    contacts.store.execute(
        "INSERT INTO conversations (conv_id, kind, peer_id, state, created_at)"
        " VALUES ('c1', 'dm', ?, 'request', ?)",
        (BOB.peer_id, T0),
    )
    contacts.add(BOB.peer_id)
    assert contacts.store.query("SELECT state FROM conversations")[0]["state"] == "active"


def test_verify_and_unverify(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    assert contacts.verify("bob")["verified"] is True
    assert contacts.get(BOB.peer_id)["verified"] is True
    assert contacts.verify("bob", verified=False)["verified"] is False
    assert contacts.get(BOB.peer_id)["verified"] is False


def test_renaming_keeps_the_verified_flag(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    contacts.verify("bob")
    assert contacts.add(BOB.peer_id, "robert")["verified"] is True


def test_verifying_someone_who_is_not_a_contact_is_a_usage_error(contacts: Contacts) -> None:
    with pytest.raises(UsageError, match="is not a contact; add it first") as info:
        contacts.verify(CAROL.peer_id)
    assert not isinstance(info.value, PeerNameError)  # the name resolved; the peer is no contact
    assert not contacts.is_contact(CAROL.peer_id)


def test_get_of_a_non_contact_is_a_usage_error(contacts: Contacts) -> None:
    with pytest.raises(UsageError, match="is not a contact"):
        contacts.get(CAROL.peer_id)


def test_all_lists_contacts_by_name(contacts: Contacts) -> None:
    contacts.add(DAVE.peer_id, "zed")
    contacts.add(CAROL.peer_id, "alice")
    assert [c["name"] for c in contacts.all()] == ["alice", "zed"]


# --- resolve --------------------------------------------------------------------------------


def test_resolve_by_nickname(contacts: Contacts) -> None:
    contacts.add(CAROL.peer_id, "carol")
    assert contacts.resolve("carol") == CAROL.public_key
    assert contacts.resolve("  carol ") == CAROL.public_key


def test_resolve_by_full_id_even_of_an_unknown_peer(contacts: Contacts) -> None:
    assert contacts.resolve(DAVE.peer_id) == DAVE.public_key
    assert contacts.resolve(DAVE.peer_id.upper()) == DAVE.public_key


def test_resolve_by_a_unique_prefix_of_a_known_peer(contacts: Contacts) -> None:
    assert contacts.resolve(BOB.peer_id[:3]) == BOB.public_key
    assert contacts.resolve(RANDALL.peer_id[:3].upper()) == RANDALL.public_key


def test_resolve_by_prefix_knows_contacts_and_conversation_peers(contacts: Contacts) -> None:
    with pytest.raises(PeerNameError, match="no contact or known peer matches"):
        contacts.resolve(CAROL.peer_id[:4])
    contacts.add(CAROL.peer_id)
    assert contacts.resolve(CAROL.peer_id[:4]) == CAROL.public_key
    contacts.store.execute(
        "INSERT INTO conversations (conv_id, kind, peer_id, state, created_at)"
        " VALUES ('c1', 'dm', ?, 'request', ?)",
        (DAVE.peer_id, T0),
    )
    assert contacts.resolve(DAVE.peer_id[:4]) == DAVE.public_key


def test_an_ambiguous_prefix_is_a_peer_name_error(contacts: Contacts) -> None:
    with pytest.raises(PeerNameError, match="'rk' matches 2 peers; give more of the id"):
        contacts.resolve("rk")


def test_a_name_matching_no_one_is_a_peer_name_error(contacts: Contacts) -> None:
    with pytest.raises(PeerNameError, match="no contact or known peer matches 'nobody'"):
        contacts.resolve("nobody")
    with pytest.raises(PeerNameError, match="empty peer name"):
        contacts.resolve("   ")


def test_a_nickname_wins_over_an_id_prefix(contacts: Contacts) -> None:
    contacts.add(CAROL.peer_id, BOB.peer_id[:4])
    assert contacts.resolve(BOB.peer_id[:4]) == CAROL.public_key


# --- safety numbers ---------------------------------------------------------------------------


def test_the_safety_number_is_the_same_on_both_sides() -> None:
    mine = contacts_of(ME).add(BOB.peer_id, "bob")["safety_number"]
    theirs = contacts_of(BOB).add(ME.peer_id, "me")["safety_number"]
    assert mine == theirs == ME.safety_number_with(BOB.public_key)
    assert mine != contacts_of(ME).add(CAROL.peer_id)["safety_number"]
    groups = mine.split(" ")
    assert len(groups) == 6 and all(len(g) == 5 and g.isdigit() for g in groups)


# --- validation, rename, remove, block, names ----------------------------------------


def test_add_refuses_a_full_id_that_is_not_a_valid_public_key(contacts: Contacts) -> None:
    not_a_point = encode_peer_id(b"\xff" * 32)  # base32 of 32 bytes, but no Ed25519 key
    with pytest.raises(UsageError, match="not a valid public key"):
        contacts.add(not_a_point)
    with pytest.raises(UsageError, match="52 characters"):
        check_peer_key(BOB.peer_id[:-1])
    assert check_peer_key(CAROL.peer_id) == CAROL.public_key
    assert contacts.all() == []


def test_rename_gives_a_contact_a_new_nickname(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    contacts.add(CAROL.peer_id, "carol")
    assert contacts.rename("bob", "robert")["name"] == "robert"
    assert contacts.resolve("robert") == BOB.public_key
    with pytest.raises(UsageError, match="taken"):
        contacts.rename("robert", "carol")
    with pytest.raises(UsageError, match=r"1\.\.100"):
        contacts.rename("robert", "  ")
    with pytest.raises(UsageError, match="not a contact"):
        contacts.rename(DAVE.peer_id, "dave")


def test_remove_forgets_the_contact_and_its_nickname(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    assert contacts.remove("bob")["peer_id"] == BOB.peer_id
    assert not contacts.is_contact(BOB.peer_id) and contacts.all() == []
    with pytest.raises(UsageError, match="not a contact"):
        contacts.remove(BOB.peer_id)


def test_block_marks_any_peer_and_unblock_clears_it(contacts: Contacts) -> None:
    contacts.add(BOB.peer_id, "bob")
    assert contacts.block("bob") == {"peer_id": BOB.peer_id, "name": "bob", "blocked": True}
    assert contacts.get(BOB.peer_id)["blocked"] is True
    contacts.block(CAROL.peer_id)  # not a contact: blocked all the same
    assert contacts.blocked() == {BOB.peer_id, CAROL.peer_id}
    contacts.block("bob", blocked=False)
    assert not contacts.is_blocked(BOB.peer_id) and contacts.is_blocked(CAROL.peer_id)
    with pytest.raises(UsageError, match="yourself"):
        contacts.block(ME.peer_id)


def test_display_name_is_nickname_else_announced_name_else_id_prefix(contacts: Contacts) -> None:
    assert contacts.display_name(BOB.peer_id) == BOB.peer_id[:8]
    assert contacts.learn_name(BOB.peer_id, "Bob B.", ts_ms=1000)
    assert contacts.display_name(BOB.peer_id) == "Bob B."
    contacts.add(BOB.peer_id, "bobby")
    view = contacts.get(BOB.peer_id)
    assert (view["name"], view["own_name"], view["display_name"]) == ("bobby", "Bob B.", "bobby")
    assert contacts.names() == {BOB.peer_id: "bobby"}


def test_a_learned_name_is_cleaned_and_only_a_newer_record_replaces_it(
    contacts: Contacts,
) -> None:
    assert contacts.learn_name(BOB.peer_id, "bob\x1b[31m\nred\u202e", ts_ms=2000)
    assert contacts.own_name_of(BOB.peer_id) == "bob[31m red"
    assert not contacts.learn_name(BOB.peer_id, "older", ts_ms=1000)
    assert contacts.learn_name(BOB.peer_id, "x" * 500, ts_ms=3000)
    assert contacts.own_name_of(BOB.peer_id) == "x" * 64
    assert not contacts.learn_name(BOB.peer_id, "\x00\x07", ts_ms=4000)  # nothing left
    assert not contacts.learn_name(ME.peer_id, "me", ts_ms=5000)  # our own name is not learned
