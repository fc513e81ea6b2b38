"""Edits, deletes, reactions and replies, stepped without sockets (see test_messages.Peer).

Each test decides which envelope reaches whom and in which order: a change
that arrives before its target, twice, or from someone who may not make it.
"""

from __future__ import annotations

import pytest

from chat.content import Content
from chat.reader import dm_conversation_id
from chat.tables import MIGRATIONS
from chat.timeline import Timeline
from mesh.errors import UsageError
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import encode_peer_id
from tests.chat.test_messages import Peer, deliver


@pytest.fixture
def pair() -> tuple[Peer, Peer]:
    return Peer("alice"), Peer("bob")


def view(peer: Peer, other: Peer, msg_id: str) -> dict[str, object]:
    return next(m for m in peer.chat.history(other.id) if m["id"] == msg_id)


def test_an_edit_replaces_the_text_everywhere_and_is_marked_edited(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    msg = a.chat.send_direct(b.id, "helo wrold")
    a.chat.edit(msg, "hello world")
    assert view(a, b, msg)["text"] == "hello world" and view(a, b, msg)["edited"]
    deliver(b, a.take(EnvelopeType.CHAT))
    shown = view(b, a, msg)
    assert (shown["text"], shown["edited"], shown["deleted"]) == ("hello world", True, False)
    assert [m["id"] for m in b.chat.history(a.id)] == [msg]  # the edit is no message of its own
    assert [r["id"] for r in b.chat.search("hello")] == [msg]
    assert b.chat.search("wrold") == []  # the old words left the index


def test_changes_that_arrive_before_their_target_wait_and_then_apply(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    first = a.chat.send_direct(b.id, "one")
    second = a.chat.send_direct(b.id, "two")
    a.chat.edit(first, "one, edited")
    a.chat.react(second, "👍")
    a.chat.delete(second)
    message_one, message_two, *changes = a.take(EnvelopeType.CHAT)
    deliver(b, changes)  # every change first: nothing to apply them to yet
    assert b.chat.history(a.id) == []
    deliver(b, [message_two, message_one])
    assert view(b, a, first)["text"] == "one, edited" and view(b, a, first)["edited"]
    two = view(b, a, second)
    assert (two["text"], two["deleted"], two["reactions"]) == ("", True, {})
    assert b.chat.counters.get("chat_received") == 5


def test_of_two_edits_the_later_wins_in_either_order(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    msg = a.chat.send_direct(b.id, "v1")
    a.chat.edit(msg, "v2")
    a.chat.edit(msg, "v3")
    original, edit2, edit3 = a.take(EnvelopeType.CHAT)
    deliver(b, [original, edit3, edit2])
    assert view(b, a, msg)["text"] == "v3"
    assert view(a, b, msg)["text"] == "v3"


def test_only_the_author_may_edit_or_delete_others_are_refused_and_counted(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    msg = a.chat.send_direct(b.id, "mine")
    deliver(b, a.take(EnvelopeType.CHAT))
    with pytest.raises(UsageError, match="only its author can edit"):
        b.chat.edit(msg, "yours now")
    with pytest.raises(UsageError, match="only its author can delete"):
        b.chat.delete(msg)
    # a modified client sends them anyway: the receiver refuses them
    conv = encode_peer_id(
        dm_conversation_id(a.node.identity.public_key, b.node.identity.public_key)
    )
    b.chat._send_to(conv, "edit", "yours now", msg)
    b.chat._send_to(conv, "delete", "", msg)
    deliver(a, b.take(EnvelopeType.CHAT))
    assert view(a, b, msg)["text"] == "mine" and not view(a, b, msg)["deleted"]
    assert a.chat.counters["chat_refused_not_author"] == 2


def test_a_change_held_for_a_missing_target_is_refused_if_its_author_did_not_write_it() -> None:
    store = Store(None)
    store.migrate_component("chat", MIGRATIONS)
    timeline = Timeline(store, "me", lambda text: False)
    forged = Content("e1", "forged", 2, 2, "edit", "m1")
    held = timeline.add("conv", "mallory", forged, "received", 0.0, 0, 0)
    assert held.added and held.refused == [] and held.changed == []
    target = timeline.add("conv", "alice", Content("m1", "original", 1, 1), "received", 0.0, 0, 1)
    assert target.refused == ["not_author"] and target.changed == []
    assert store.query("SELECT text FROM messages WHERE msg_id = 'm1'") == [{"text": "original"}]
    assert store.query("SELECT text, held FROM messages WHERE msg_id = 'e1'") == [
        {"text": "", "held": 0}
    ]


def test_a_refused_edit_with_a_late_timestamp_does_not_hold_back_the_authors_edits() -> None:
    store = Store(None)
    store.migrate_component("chat", MIGRATIONS)
    timeline = Timeline(store, "me", lambda text: False)
    timeline.add("conv", "alice", Content("m1", "original", 1, 1), "received", 0.0, 0, 1)
    forged = Content("e1", "forged", 2**62, 2, "edit", "m1")  # from the far future
    assert timeline.add("conv", "mallory", forged, "received", 0.0, 0, 0).refused == ["not_author"]
    own = timeline.add(
        "conv", "alice", Content("e2", "fixed", 5, 3, "edit", "m1"), "received", 0.0, 0, 2
    )
    assert own.changed == ["m1"]
    assert store.query("SELECT text FROM messages WHERE msg_id = 'm1'") == [{"text": "fixed"}]


def test_reactions_are_counted_per_emoji_and_toggled(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    msg = a.chat.send_direct(b.id, "lunch?")
    deliver(b, a.take(EnvelopeType.CHAT))
    assert b.chat.react(msg, "👍")["on"] is True
    assert a.chat.react(msg, "👍")["on"] is True
    a.chat.react(msg, "🍕")
    deliver(a, b.take(EnvelopeType.CHAT))
    deliver(b, a.take(EnvelopeType.CHAT))
    for peer, other in ((a, b), (b, a)):
        assert view(peer, other, msg)["reactions"] == {"👍": 2, "🍕": 1}
    off = b.chat.react(msg, "👍")
    assert off["on"] is False
    deliver(a, b.take(EnvelopeType.CHAT))
    assert view(a, b, msg)["reactions"] == {"👍": 1, "🍕": 1}
    assert view(b, a, msg)["mine"] == []
    with pytest.raises(UsageError, match="one emoji"):
        a.chat.react(msg, "two words")


def test_a_reply_quotes_the_message_it_answers(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    question = a.chat.send_direct(b.id, "tea or coffee?")
    deliver(b, a.take(EnvelopeType.CHAT))
    answer = b.chat.reply(question[:8], "tea")
    deliver(a, b.take(EnvelopeType.CHAT))
    shown = view(a, b, answer)
    assert shown["reply_to"] == question
    assert shown["quote"] == {
        "id": question,
        "author": a.id,
        "text": "tea or coffee?",
        "deleted": False,
    }
    a.chat.delete(question)
    assert view(a, b, answer)["quote"]["deleted"] is True
    assert view(a, b, answer)["quote"]["text"] == ""


def test_unread_and_mentions_count_until_read(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    a.chat.send_direct(b.id, "hi")
    a.chat.send_direct(b.id, "@bob look")
    gone = a.chat.send_direct(b.id, "oops @bob")
    deliver(b, a.take(EnvelopeType.CHAT))
    conv = b.chat.resolve_conversation(a.id)
    assert b.chat.unread() == [{"conv": conv, "unread": 3, "mentions": 2}]
    assert [m["mention"] for m in b.chat.history(a.id)] == [False, True, True]
    assert a.chat.unread() == []  # your own messages are never unread
    a.chat.delete(gone)
    deliver(b, a.take(EnvelopeType.CHAT))
    assert b.chat.unread() == [{"conv": conv, "unread": 2, "mentions": 1}]
    b.chat.mark_read(a.id)
    assert b.chat.unread() == []


def test_a_delete_leaves_no_text_behind_in_the_tables_or_the_index(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    msg = a.chat.send_direct(b.id, "zyzzyva secret")
    a.chat.edit(msg, "zyzzyva secret, edited")
    deliver(b, a.take(EnvelopeType.CHAT))
    b.chat.react(msg, "😮")
    a.chat.delete(msg)
    deliver(b, a.take(EnvelopeType.CHAT))
    for peer in (a, b):
        store = peer.chat.store
        assert store.query("SELECT msg_id FROM messages WHERE text LIKE '%zyzzyva%'") == []
        assert peer.chat.search("zyzzyva") == []
        store.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms USING fts5vocab(main, messages_fts, row)"
        )
        assert store.query("SELECT term FROM temp.terms WHERE term = 'zyzzyva'") == []
    with pytest.raises(UsageError, match="deleted"):
        a.chat.edit(msg, "too late")


def test_search_ranks_matches_and_keeps_to_one_conversation(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    c = Peer("carol")
    a.chat.send_direct(b.id, "the release is friday")
    a.chat.send_direct(b.id, "release release release notes")
    a.chat.send_direct(c.id, "release party")
    found = a.chat.search("release")
    assert found[0]["text"] == "release release release notes"
    assert {r["conv"] for r in a.chat.search("release", b.id)} == {
        a.chat.resolve_conversation(b.id)
    }
    assert len(a.chat.search("rele*")) == 3
    assert a.chat.search('"release" OR NEAR(') == a.chat.search("release OR NEAR")
    with pytest.raises(UsageError, match="no words"):
        a.chat.search("  ()* ")
    assert set(found[0]) == {"id", "conv", "author", "text", "ts"}


async def test_unread_counts_of_a_burst_with_a_delete_in_it_come_out_right(
    pair: tuple[Peer, Peer],
) -> None:
    # a burst counts its unread messages at its end; a delete in the same burst must
    # see the messages counted before it
    a, b = pair
    a.chat.send_direct(b.id, "hi")
    a.chat.send_direct(b.id, "@bob look")
    gone = a.chat.send_direct(b.id, "oops @bob")
    a.chat.delete(gone)
    for envelope in a.take(EnvelopeType.CHAT):
        b.chat._queue_chat(envelope)  # taken in as one burst (the loop is running)
    b.chat._take_queued()
    assert b.chat.bursts == 1
    conv = b.chat.resolve_conversation(a.id)
    assert b.chat.unread() == [{"conv": conv, "unread": 2, "mentions": 1}]


def burst_statements(peer: Peer, envelopes: list[Envelope]) -> list[str]:
    """Every statement `peer` runs taking `envelopes` in as one burst, triggers' included."""
    statements: list[str] = []
    peer.chat.store.db.conn.set_trace_callback(statements.append)
    try:
        for envelope in envelopes:
            peer.chat._queue_chat(envelope)
        peer.chat._take_queued()
    finally:
        peer.chat.store.db.conn.set_trace_callback(None)
    return statements


async def test_a_burst_indexes_its_text_once_and_changes_in_it_leave_the_index_right(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    words = [f"zebra{i} common" for i in range(30)]
    for text in words:
        a.chat.send_direct(b.id, text)
    edited = a.chat.send_direct(b.id, "aardvark common")
    a.chat.edit(edited, "okapi common")
    gone = a.chat.send_direct(b.id, "quokka common")
    a.chat.delete(gone)
    statements = burst_statements(b, a.take(EnvelopeType.CHAT))
    assert b.chat.bursts == 1
    # no message indexed by the insert trigger: the burst's rows in one statement at its
    # end, and once more before a change of text (the edit and the delete here)
    assert not [s for s in statements if "TRIGGER messages_fts_insert" in s]
    assert len([s for s in statements if s.startswith("INSERT INTO messages_fts (rowid")]) == 3
    assert len(b.chat.search("common", limit=100)) == 31
    assert b.chat.search("zebra7")[0]["text"] == "zebra7 common"
    assert [r["text"] for r in b.chat.search("okapi")] == ["okapi common"]
    assert b.chat.search("aardvark") == [] and b.chat.search("quokka") == []
    store = b.chat.store
    store.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    assert store.query("SELECT * FROM messages_fts_deferred") == []  # the trigger is on again
    b.chat.send_direct(a.id, "walrus")  # a message of one's own is indexed as it is stored
    assert [r["text"] for r in b.chat.search("walrus")] == ["walrus"]
