"""The chat layer's own tables beside the mesh's (Store.migrate_component "chat").

Version 1 adds what issue 22 needs on top of the mesh schema's ``messages``:

- ``kind`` and ``ref``: a row is a message (``msg``), a reply (``reply``, ``ref``
  the message answered), or a change to another message (``edit``, ``delete``,
  ``react``, ``ref`` its target). Every sealed content is one row, so the
  ``messages_key`` index still drops duplicates whatever their kind; ``held`` is
  1 while a change waits for its target to arrive.
- ``edited``, ``deleted``, ``mention`` on the messages shown.
- ``reactions``: the latest state of each (message, author, emoji), last writer
  (by the author's timestamp and sequence) wins, so reactions converge in any order;
  a ``react`` row's ``active`` says whether it turns its reaction on or off.
- ``conv_reads``: unread and mention counts per conversation, kept across restarts.
- ``messages_fts``: an FTS5 index over the text of the messages shown
  (external content: the text lives once, in ``messages``), kept by triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mesh.storage.store import run_script

if TYPE_CHECKING:
    import sqlite_utils

#: the pairwise ratchet sessions' tables (chat/sessions.py)
SESSION_TABLES = """
CREATE TABLE ratchet_sessions (
    peer_id TEXT NOT NULL, sid BLOB NOT NULL, state BLOB NOT NULL,
    initiator INTEGER NOT NULL, init BLOB, created REAL NOT NULL, last_in REAL,
    PRIMARY KEY (peer_id, sid)
);
CREATE TABLE prekeys (
    key_id INTEGER PRIMARY KEY, private BLOB, public BLOB NOT NULL, created REAL NOT NULL
);
CREATE TABLE peer_prekeys (
    peer_id TEXT PRIMARY KEY, key_id INTEGER NOT NULL, public BLOB NOT NULL, ts_ms INTEGER NOT NULL
);
"""


#: the kinds of row shown in a conversation (the others change those)
SHOWN_KINDS = ("msg", "reply")

CHAT_V1 = """
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'msg';
ALTER TABLE messages ADD COLUMN ref TEXT;
ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN mention INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
CREATE INDEX messages_ref ON messages(ref) WHERE ref IS NOT NULL;
CREATE TABLE reactions (
    msg_id TEXT NOT NULL, author TEXT NOT NULL, emoji TEXT NOT NULL, active INTEGER NOT NULL,
    ts INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (msg_id, author, emoji)
);
CREATE TABLE conv_reads (
    conv_id TEXT PRIMARY KEY, unread INTEGER NOT NULL DEFAULT 0,
    mentions INTEGER NOT NULL DEFAULT 0, read_at REAL NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='rowid');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
    WHEN new.kind IN ('msg', 'reply') BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
    WHEN old.kind IN ('msg', 'reply') BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
    WHEN old.kind IN ('msg', 'reply') BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
"""

#: Version 4, for bursts of received messages (chat.timeline). While a burst is
#: stored, a row in ``messages_fts_deferred`` (inside the burst's transaction, so
#: no other connection ever sees it) turns the insert trigger off, and the burst
#: indexes its new rows in one statement at its end: through the trigger, each row
#: cost about three times its insert, since every message has a savepoint of its
#: own. ``messages_held`` indexes the changes waiting for their target (few), so a
#: burst asks once whether any waits instead of once per message.
FTS_DEFERRED = """
CREATE INDEX messages_held ON messages(ref) WHERE held = 1;
CREATE TABLE messages_fts_deferred (since INTEGER NOT NULL);
DROP TRIGGER messages_fts_insert;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
    WHEN new.kind IN ('msg', 'reply') AND NOT EXISTS (SELECT 1 FROM messages_fts_deferred) BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
"""

MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, CHAT_V1),
    lambda db: run_script(db, SESSION_TABLES),  # version 2: pairwise ratchet sessions
    # version 3: an outbox item's envelope ids found by item: a receipt or an expiry
    # deletes them, and every try of an item for a member away for days adds one
    lambda db: run_script(
        db, "CREATE INDEX IF NOT EXISTS outbox_envelopes_item ON outbox_envelopes(item_id);"
    ),
    lambda db: run_script(db, FTS_DEFERRED),  # version 4: a burst indexes its messages at once
]
