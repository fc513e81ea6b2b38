"""Tests for mesh.storage.mailbox: keeping, handing over, receipts, quotas and expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.routing.router import Router
from mesh.storage.mailbox import Mailbox, MailboxLimits, receipt_ids
from mesh.storage.pool import ROW_OVERHEAD
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
CAROL = Identity.from_seed(bytes(range(64, 96)))
MALLORY = Identity.from_seed(bytes(range(96, 128)))
T0 = 1_700_000_000.0


class Author:
    """Signs envelopes from one fixed identity, with the router's sequence numbers."""

    def __init__(self, identity: Identity) -> None:
        self.router = Router(identity, now=T0)

    def data(self, dest: Identity, payload: bytes = b"hello", now: float = T0) -> Envelope:
        return self.router.make(
            EnvelopeType.DATA,
            now,
            dest_kind=DestKind.PEER,
            dest=dest.public_key,
            payload=payload,
        )

    def receipt(self, dest: Identity, *acked: Envelope, now: float = T0) -> Envelope:
        return self.router.make(
            EnvelopeType.RECEIPT,
            now,
            dest_kind=DestKind.PEER,
            dest=dest.public_key,
            payload=b"".join(e.message_id for e in acked),
        )


@pytest.fixture
def alice() -> Author:
    return Author(ALICE)


@pytest.fixture
def bob() -> Author:
    return Author(BOB)


def ids(envelopes: list[Envelope]) -> list[bytes]:
    return [e.message_id for e in envelopes]


def mailbox(**limits: float) -> Mailbox:
    return Mailbox(Store(None), MailboxLimits(**limits))  # type: ignore[arg-type]


# --- keep and hand over ---------------------------------------------------------------


def test_kept_envelopes_are_handed_over_to_their_destination_oldest_first(alice: Author) -> None:
    box = mailbox()
    first, second = alice.data(BOB, b"1"), alice.data(BOB, b"2")
    for_carol = alice.data(CAROL, b"3")
    box.keep(second, T0 + 2)
    box.keep(first, T0 + 1)
    box.keep(for_carol, T0 + 3)
    handed = box.handover(BOB.public_key)
    assert ids(handed) == ids([first, second])
    assert [e.payload for e in handed] == [b"1", b"2"]
    assert handed[0].encode() == first.encode()
    assert ids(box.handover(CAROL.public_key)) == ids([for_carol])
    assert box.handover(MALLORY.public_key) == []
    assert box.counters["mailbox_kept"] == 3
    assert box.counters["mailbox_handed_over"] == 3


def test_handed_over_envelopes_stay_until_receipted(alice: Author) -> None:
    box = mailbox()
    envelope = alice.data(BOB)
    box.keep(envelope, T0)
    box.handover(BOB.public_key)
    assert ids(box.handover(BOB.public_key)) == ids([envelope])


def test_keep_with_store_false_keeps_nothing(alice: Author) -> None:
    box = mailbox()
    box.keep(alice.data(BOB), T0, store=False)
    assert box.handover(BOB.public_key) == []
    assert "mailbox_kept" not in box.counters


def test_a_duplicate_keep_is_ignored(alice: Author) -> None:
    box = mailbox()
    envelope = alice.data(BOB)
    box.keep(envelope, T0)
    box.keep(envelope, T0 + 1)
    box.keep(envelope.with_hops(3), T0 + 2)  # the same envelope, further along: same id
    assert ids(box.handover(BOB.public_key)) == ids([envelope])
    assert box.counters["mailbox_kept"] == 1
    assert box.status()["size"] == 1


# --- receipts -----------------------------------------------------------------------------


def test_a_receipt_from_the_destination_deletes_what_it_acknowledges(
    alice: Author, bob: Author
) -> None:
    box = mailbox()
    acked, other = alice.data(BOB, b"1"), alice.data(BOB, b"2")
    box.keep(acked, T0)
    box.keep(other, T0 + 1)
    box.keep(bob.receipt(ALICE, acked), T0 + 2, store=False)
    assert ids(box.handover(BOB.public_key)) == ids([other])


def test_a_receipt_from_someone_else_deletes_nothing(alice: Author) -> None:
    box = mailbox()
    envelope = alice.data(BOB)
    box.keep(envelope, T0)
    box.keep(Author(MALLORY).receipt(ALICE, envelope), T0 + 1, store=False)
    box.keep(alice.receipt(BOB, envelope), T0 + 2, store=False)  # nor does its sender's
    assert ids(box.handover(BOB.public_key)) == ids([envelope])


def test_acknowledge_deletes_only_copies_kept_for_that_destination(alice: Author) -> None:
    box = mailbox()
    for_bob, for_carol = alice.data(BOB), alice.data(CAROL)
    box.keep(for_bob, T0)
    box.keep(for_carol, T0)
    box.acknowledge(CAROL.public_key, [for_bob.message_id, for_carol.message_id])
    assert ids(box.handover(BOB.public_key)) == ids([for_bob])
    assert box.handover(CAROL.public_key) == []


def test_a_kept_receipt_is_deleted_once_handed_over(alice: Author, bob: Author) -> None:
    box = mailbox()
    envelope = alice.data(BOB)
    box.keep(envelope, T0)
    receipt = bob.receipt(ALICE, envelope)
    box.keep(receipt, T0 + 1)  # relayed on its way to alice, and kept for her
    assert box.handover(BOB.public_key) == []  # it acknowledged bob's copy on the way
    assert ids(box.handover(ALICE.public_key)) == ids([receipt])
    assert box.handover(ALICE.public_key) == []
    assert box.status()["size"] == 0


def test_receipt_ids_reads_whole_32_byte_ids_only() -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert receipt_ids(a + b) == [a, b]
    assert receipt_ids(a + b[:31]) == [a]
    assert receipt_ids(b"") == []


# --- quotas --------------------------------------------------------------------------------


def test_the_per_destination_item_quota_evicts_the_oldest(alice: Author) -> None:
    box = mailbox(per_dest_items=2)
    first, second, third = (alice.data(BOB, bytes([i])) for i in range(3))
    for_carol = alice.data(CAROL)
    box.keep(for_carol, T0)
    box.keep(first, T0 + 1)
    box.keep(second, T0 + 2)
    box.keep(third, T0 + 3)
    assert ids(box.handover(BOB.public_key)) == ids([second, third])
    assert ids(box.handover(CAROL.public_key)) == ids([for_carol])  # another quota
    assert box.counters["mailbox_evicted_dest_quota"] == 1
    assert box.counters["mailbox_kept"] == 4


def test_the_per_destination_byte_quota_evicts_the_oldest(alice: Author) -> None:
    first, second = alice.data(BOB, b"a" * 100), alice.data(BOB, b"b" * 100)
    box = mailbox(per_dest_bytes=len(first.encode()) + 50)
    box.keep(first, T0)
    box.keep(second, T0 + 1)
    assert ids(box.handover(BOB.public_key)) == ids([second])
    assert box.counters["mailbox_evicted_dest_quota"] == 1


def test_an_envelope_larger_than_the_destination_quota_is_refused(alice: Author) -> None:
    small, large = alice.data(BOB, b"x"), alice.data(BOB, b"x" * 500)
    box = mailbox(per_dest_bytes=300)
    box.keep(small, T0)
    box.keep(large, T0 + 1)
    assert ids(box.handover(BOB.public_key)) == ids([small])  # nothing evicted for it
    assert box.counters["mailbox_refused_size"] == 1


def test_an_envelope_larger_than_the_total_quota_is_refused(alice: Author) -> None:
    # per-destination bound looser than the total: the envelope can never fit
    small, large = alice.data(BOB, b"x"), alice.data(CAROL, b"x" * 500)
    box = mailbox(per_dest_bytes=10_000, total_bytes=300)
    box.keep(small, T0)
    box.keep(large, T0 + 1)
    assert ids(box.handover(BOB.public_key)) == ids([small])
    assert box.handover(CAROL.public_key) == []
    assert box.counters["mailbox_refused_size"] == 1


def test_the_total_item_quota_evicts_the_oldest_of_any_destination(alice: Author) -> None:
    box = mailbox(total_items=2)
    oldest, middle, newest = alice.data(CAROL), alice.data(BOB), alice.data(MALLORY)
    box.keep(oldest, T0)
    box.keep(middle, T0 + 1)
    box.keep(newest, T0 + 2)
    assert box.handover(CAROL.public_key) == []
    assert ids(box.handover(BOB.public_key)) == ids([middle])
    assert ids(box.handover(MALLORY.public_key)) == ids([newest])
    assert box.counters["mailbox_evicted_total_quota"] == 1
    assert "mailbox_evicted_dest_quota" not in box.counters


def test_the_total_byte_quota_evicts_the_oldest(alice: Author) -> None:
    first, second = alice.data(CAROL, b"a" * 100), alice.data(BOB, b"b" * 100)
    box = mailbox(total_bytes=len(first.encode()) + 50)
    box.keep(first, T0)
    box.keep(second, T0 + 1)
    assert box.handover(CAROL.public_key) == []
    assert ids(box.handover(BOB.public_key)) == ids([second])
    assert box.counters["mailbox_evicted_total_quota"] == 1


# --- expiry and status -----------------------------------------------------------------------


def test_copies_expire_after_max_age(alice: Author) -> None:
    box = mailbox(max_age=100.0)
    old, young = alice.data(BOB, b"old"), alice.data(BOB, b"young")
    box.keep(old, T0)
    box.keep(young, T0 + 50)
    box.expire(T0 + 100)  # exactly max_age old: not yet
    assert len(box.handover(BOB.public_key)) == 2
    assert "mailbox_expired" not in box.counters
    box.expire(T0 + 120)
    assert ids(box.handover(BOB.public_key)) == ids([young])
    assert box.counters["mailbox_expired"] == 1


def test_status_reports_size_and_bounds(alice: Author) -> None:
    box = mailbox(total_items=50, total_bytes=100_000, stranger_bytes=9_000)
    assert box.status() == {
        "size": 0,
        "bound": 50,
        "bytes": 0,
        "bytes_bound": 100_000,
        "stranger_bytes": 0,
        "stranger_bytes_bound": 9_000,
    }
    a, b = alice.data(BOB, b"1"), alice.data(CAROL, b"22")
    box.keep(a, T0)
    box.keep(b, T0)
    size = len(a.encode()) + len(b.encode())
    assert box.status() == {
        "size": 2,
        "bound": 50,
        "bytes": size,
        "bytes_bound": 100_000,
        "stranger_bytes": size + 2 * ROW_OVERHEAD,
        "stranger_bytes_bound": 9_000,
    }


def test_the_mailbox_survives_a_restart(alice: Author, tmp_path: Path) -> None:
    path = tmp_path / "home.db"
    store = Store(path)
    envelope = alice.data(BOB)
    Mailbox(store).keep(envelope, T0)
    store.close()
    reopened = Store(path)
    try:
        assert ids(Mailbox(reopened).handover(BOB.public_key)) == ids([envelope])
    finally:
        reopened.close()


# --- running totals -------------------------------------------------------------------


def _counted(box: Mailbox) -> dict[str, int]:
    row = box.store.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM mailbox")[0]
    return {"size": row["n"], "bytes": row["b"]}


def test_running_totals_follow_every_insert_and_delete(alice: Author, bob: Author) -> None:
    box = mailbox(per_dest_items=3, total_items=5, max_age=100.0)
    to_bob = [alice.data(BOB, bytes([i]) * (10 + i), T0 + i) for i in range(5)]
    to_carol = [alice.data(CAROL, bytes([i]) * 50, T0 + 10 + i) for i in range(3)]
    box.keep_many([(e, True) for e in to_bob + to_carol], T0 + 20)  # evicts by both quotas
    for step in (
        lambda: None,
        lambda: box.keep(bob.receipt(ALICE), T0 + 21),  # a receipt kept for alice
        lambda: box.acknowledge(BOB.public_key, ids(to_bob)),
        lambda: box.handover(ALICE.public_key),  # hands the receipt over and drops it
        lambda: box.expire(T0 + 200),
    ):
        step()
        status = box.status()
        assert {"size": status["size"], "bytes": status["bytes"]} == _counted(box)
    assert box.status()["size"] == 0


def test_totals_are_read_back_when_the_database_is_reopened(alice: Author, tmp_path: Path) -> None:
    path = tmp_path / "home.db"
    first = Mailbox(Store(path), MailboxLimits(per_dest_items=2))
    kept = [alice.data(BOB, bytes([i]), T0 + i) for i in range(2)]
    first.keep_many([(e, True) for e in kept], T0)
    first.store.close()
    again = Mailbox(Store(path), MailboxLimits(per_dest_items=2))
    assert again.status()["size"] == 2
    newest = alice.data(BOB, b"new", T0 + 5)
    again.keep(newest, T0 + 5)  # the quota counts what the database already held
    assert ids(again.handover(BOB.public_key)) == ids([kept[1], newest])
    assert again.counters["mailbox_evicted_dest_quota"] == 1


def test_a_failed_transaction_leaves_the_totals_true(alice: Author) -> None:
    box = mailbox()
    box.keep(alice.data(BOB, b"kept"), T0)
    keep_one = box._keep_one

    class Boom(Exception):
        pass

    def keep_then_fail(envelope: Envelope, now: float) -> bool:
        if envelope.payload == b"bad":
            raise Boom
        return keep_one(envelope, now)

    box._keep_one = keep_then_fail  # type: ignore[method-assign]
    burst = [(alice.data(BOB, b"rolled back"), True), (alice.data(BOB, b"bad"), True)]
    with pytest.raises(Boom):
        box.keep_many(burst, T0)
    status = box.status()
    assert {"size": status["size"], "bytes": status["bytes"]} == _counted(box)
    assert status["size"] == 1  # the whole burst rolled back, the first keep with it


# --- the stranger pool ----------------------------------------------------------------


def contacts_mailbox(contacts: set[Identity], **limits: float) -> Mailbox:
    names = {c.peer_id for c in contacts}
    return Mailbox(Store(None), MailboxLimits(**limits), is_contact=names.__contains__)  # type: ignore[arg-type]


def test_strangers_mail_shares_a_pool_and_the_heaviest_author_loses_its_oldest_first(
    alice: Author,
) -> None:
    mallory = Author(MALLORY)
    box = contacts_mailbox({CAROL}, stranger_bytes=8 * (200 + ROW_OVERHEAD))
    mine = alice.data(BOB, b"a" * 100)  # bob is no contact: a stranger's mail too
    box.keep(mine, T0)
    flood = [mallory.data(Identity.from_seed(bytes([i]) * 32), b"m" * 100) for i in range(50)]
    for i, envelope in enumerate(flood):
        box.keep(envelope, T0 + 1 + i)
    assert box.status()["stranger_bytes"] <= box.limits.stranger_bytes
    assert box.counters["mailbox_evicted_stranger_pool"] > 0
    # alice, who holds little, keeps her mail; mallory's newest are what is left of his
    assert ids(box.handover(BOB.public_key)) == ids([mine])
    last = flood[-1]
    assert ids(box.handover(last.dest)) == ids([last])
    assert box.handover(flood[0].dest) == []


def test_strangers_mail_never_evicts_a_contacts(alice: Author) -> None:
    mallory = Author(MALLORY)
    box = contacts_mailbox({CAROL}, total_items=3, stranger_bytes=10**6)
    for_carol = [alice.data(CAROL, bytes([i])) for i in range(3)]
    for i, envelope in enumerate(for_carol):
        box.keep(envelope, T0 + i)
    # the mailbox is full of a contact's mail: a stranger's is refused, not kept instead
    box.keep(mallory.data(BOB), T0 + 10)
    assert box.counters["mailbox_refused_full"] == 1
    assert ids(box.handover(CAROL.public_key)) == ids(for_carol)
    assert box.handover(BOB.public_key) == []


def test_a_contacts_mail_evicts_strangers_mail_first(alice: Author) -> None:
    mallory = Author(MALLORY)
    box = contacts_mailbox({CAROL}, total_items=3, stranger_bytes=10**6)
    old_contact = alice.data(CAROL, b"0")
    box.keep(old_contact, T0)  # the oldest of all, and a contact's
    strangers = [mallory.data(BOB, bytes([i])) for i in range(2)]
    for i, envelope in enumerate(strangers):
        box.keep(envelope, T0 + 1 + i)
    new_contact = alice.data(CAROL, b"1")
    box.keep(new_contact, T0 + 10)
    assert ids(box.handover(CAROL.public_key)) == ids([old_contact, new_contact])
    assert ids(box.handover(BOB.public_key)) == ids(strangers[1:])


def test_the_pool_is_counted_again_from_the_database(tmp_path: Path, alice: Author) -> None:
    path = tmp_path / "mail.db"
    box = Mailbox(Store(path), MailboxLimits(stranger_bytes=10**6))
    kept = alice.data(BOB, b"x" * 10)
    box.keep(kept, T0)
    again = Mailbox(Store(path), MailboxLimits(stranger_bytes=10**6))
    assert again.status()["stranger_bytes"] == len(kept.encode()) + ROW_OVERHEAD
    again.acknowledge(BOB.public_key, [kept.message_id])
    assert again.status()["stranger_bytes"] == 0
