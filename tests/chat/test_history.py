"""Reading a conversation's history by pages (chat.history): keyset pages back from the end
join up to the whole history in order, with ties in time broken by author and sequence."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat import history
from chat.tables import MIGRATIONS
from mesh.storage.store import Store

COUNT = 130


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A conversation "c" of COUNT messages, three to a millisecond from two authors, and
    changes (not shown) among them, plus another conversation."""
    store = Store(tmp_path / "meshnotes.db")
    store.migrate_component("chat", MIGRATIONS)
    with store.atomic():
        for i in range(COUNT):
            for conv in ("c", "other"):
                store.execute(
                    "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status,"
                    " stored_at, epoch, idx, kind) VALUES (?, ?, ?, ?, ?, ?, 'received', 0, 0, ?,"
                    " ?)",
                    (
                        f"{conv}{i:04d}",
                        conv,
                        "ab"[i % 2],
                        f"text {i}",
                        1_000 + i // 3,
                        i,
                        i,
                        "edit" if i % 10 == 9 else "msg",
                    ),
                )
    return store


def ordered(store: Store) -> list[str]:
    rows = store.query(
        "SELECT msg_id FROM messages WHERE conv_id = 'c' AND kind = 'msg' ORDER BY ts, author, seq"
    )
    return [r["msg_id"] for r in rows]


def test_pages_back_from_the_end_join_up_to_the_whole_history(store: Store) -> None:
    pages = [history.last_messages(store, "c", 25)]
    while True:
        page = history.messages_before(store, "c", pages[0][0]["id"], 25)
        if not page:
            break
        assert len(page) <= 25
        pages.insert(0, page)
    shown = [m["id"] for page in pages for m in page]
    assert shown == ordered(store)
    assert len(shown) == COUNT - COUNT // 10  # the changes are not shown
    assert all(m["conv_id"] == "c" for page in pages for m in page)


def test_a_page_before_a_message_not_there_is_empty(store: Store) -> None:
    assert history.messages_before(store, "c", "nosuch", 25) == []
    assert history.messages_before(store, "c", "other0001", 25) == []  # of another conversation


def test_messages_around_one_hold_it_with_about_half_before(store: Store) -> None:
    ids = ordered(store)
    at = ids.index("c0061")
    around = [m["id"] for m in history.messages_around(store, "c", "c0061", 20)]
    assert around == ids[at - 10 : at + 10]
