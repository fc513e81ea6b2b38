"""Sender keys move on: a chain is replaced after ROTATE_MESSAGES messages or ROTATE_SECONDS,
so a leaked chain key opens a bounded window and nothing after it (chat/senderkey.py)."""

from __future__ import annotations

import random

import msgpack
import pytest

import chat.keystore
import chat.ratchet
from chat.senderkey import (
    ROTATE_MESSAGES,
    ROTATE_SECONDS,
    Chain,
    associated_data,
    open_sealed,
)
from mesh.errors import ChatError
from mesh.wire.envelope import Envelope, EnvelopeType
from tests.chat.test_messages import Peer, deliver, room_of


def fields(envelope: Envelope) -> tuple[bytes, int, int, bytes, bytes | None]:
    conv, epoch, index, sealed, share = msgpack.unpackb(envelope.payload)
    return conv, epoch, index, sealed, share


def opened_with(leaked: Chain, author: Peer, envelopes: list[Envelope]) -> list[int]:
    """The indices of the recorded messages an attacker holding `leaked` can open."""
    opened = []
    for envelope in envelopes:
        conv, epoch, index, sealed, _ = fields(envelope)
        if index < leaked.index or index - leaked.index > 1000:
            continue
        key, _, _ = leaked.key_for(index)
        aad = associated_data(conv, epoch, index, author.node.identity.public_key)
        try:
            open_sealed(key, sealed, aad)
        except ChatError:
            continue
        opened.append(index)
    return opened


def texts(reader: Peer, room: str, count: int) -> list[str]:
    return [m["text"] for m in reader.chat.history(room, limit=count)]


def leaks(reader: Peer) -> list[Chain]:
    """The chain keys `reader` opens from shares from now on, in order: what a leak of its
    chain keys would give an attacker."""
    opened: list[Chain] = []
    real = reader.chat.pairwise.open_share

    def recording(*args: object) -> Chain | None:
        chain = real(*args)  # type: ignore[arg-type]
        if chain is not None:
            opened.append(chain)
        return chain

    reader.chat.pairwise.open_share = recording  # type: ignore[method-assign]
    return opened


def test_after_rotation_the_old_chain_key_opens_none_of_the_new_messages() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    shares = leaks(b)
    count = ROTATE_MESSAGES + 30
    sent = []
    for i in range(count):
        a.chat.say(room, f"message {i}")
        [envelope] = a.take(EnvelopeType.CHAT)
        sent.append(envelope)
        deliver(b, [envelope])
        deliver(a, b.take(EnvelopeType.RECEIPT))  # bob holds the chain: shares stop
    assert a.chat.counters["senderkey_rotated"] == 1
    # shares ride until the first receipt, then stop; the fresh chain is shared again
    assert [i for i, e in enumerate(sent) if fields(e)[4] is not None] == [0, ROTATE_MESSAGES]
    old = shares[0]
    assert opened_with(old, a, sent) == list(range(ROTATE_MESSAGES))
    # even the last key of the old chain opens nothing after it
    last_old = Chain(old.chain_key, 0)
    for _ in range(ROTATE_MESSAGES - 1):
        _, last_old = last_old.advance()
    assert opened_with(last_old, a, sent) == [ROTATE_MESSAGES - 1]
    # the new chain's key opens the new messages and none of the old
    new = shares[1]
    assert opened_with(new, a, sent) == list(range(ROTATE_MESSAGES, count))
    # and bob, who follows the rotation, reads everything
    assert texts(b, room, count) == [f"message {i}" for i in range(count)]


def test_a_receiver_follows_a_rotation_whatever_order_messages_arrive_in() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    count = ROTATE_MESSAGES + 5
    for i in range(count):
        a.chat.say(room, f"m{i}")
    sent = a.take(EnvelopeType.CHAT)
    # the newest first (it starts bob on the fresh chain), then the rest backwards
    deliver(b, sent[::-1])
    assert sorted(texts(b, room, count)) == sorted(f"m{i}" for i in range(count))
    assert b.chat.counters.get("chat_rejected_tampered", 0) == 0


def test_a_chain_older_than_the_rotation_time_is_replaced_at_the_next_message() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    shares = leaks(b)
    now = [1_000_000.0]
    a.node.clock = lambda: now[0]  # type: ignore[method-assign]
    a.chat.say(room, "monday")
    now[0] += ROTATE_SECONDS
    a.chat.say(room, "a week later")
    first, second = a.take(EnvelopeType.CHAT)
    assert a.chat.counters["senderkey_rotated"] == 1
    deliver(b, [first, second])
    assert opened_with(shares[0], a, [first, second]) == [0]
    assert b.texts(room) == ["monday", "a week later"]


def test_a_member_away_for_many_messages_reads_them_all_in_any_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the session skips at most 20 messages here (1,000 in the product): one share per
    # message made a member away for 21 messages, met newest first, refuse them
    monkeypatch.setattr(chat.ratchet, "MAX_SKIP", 20)
    # and a chain's skipped keys are kept 30 at most (1,000): a message must not need them
    monkeypatch.setattr(chat.keystore, "MAX_SKIP", 30)
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    count = 5 * ROTATE_MESSAGES + 50  # six chains
    for i in range(count):
        a.chat.say(room, f"m{i}")
    sent = a.take(EnvelopeType.CHAT)
    # the share of each chain is sealed once and carried by every message of the chain
    shares = {fields(envelope)[4] for envelope in sent}
    assert len(shares) == 6 and None not in shares
    newest_first = sent[::-1]  # every older chain comes after a newer one
    rest = newest_first[30:]
    random.Random(7).shuffle(rest)  # and after the first 30, any order
    deliver(b, newest_first[:30] + rest)
    assert sorted(texts(b, room, count)) == sorted(f"m{i}" for i in range(count))
    rejected = {k: v for k, v in b.chat.counters.items() if k.startswith("chat_rejected")}
    assert rejected == {}
