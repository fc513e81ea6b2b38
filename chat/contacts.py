"""Contacts: nicknames, safety numbers, the verified and blocked flags; and naming peers.

A peer is shown by its contact nickname, else the display name it announced
itself in its signed address record (kept in ``peer_names``, for any peer, so it
survives restarts), else the first 8 characters of its id (:meth:`Contacts.display_name`).
A blocked peer (``blocked``, contact or not) has its chat messages and control
messages dropped by the chat layer and its messages left out of history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mesh.errors import PeerNameError, UsageError
from mesh.storage.store import Store, run_script
from mesh.wire.peerid import decode_peer_id, encode_peer_id, safety_number

if TYPE_CHECKING:  # the node's module (websockets, the router) only for running nodes
    import sqlite_utils

    from mesh.runtime.node import Node

MAX_NAME = 100

#: the names layer's tables (Store.migrate_component "names")
NAMES_V1 = """
CREATE TABLE peer_names (peer_id TEXT PRIMARY KEY, name TEXT NOT NULL, ts_ms INTEGER NOT NULL);
CREATE TABLE blocked (peer_id TEXT PRIMARY KEY, blocked_at REAL NOT NULL);
"""
MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, NAMES_V1),
]


def check_peer_key(peer_id: str) -> bytes:
    """The public key a full peer id names, if it is a valid Ed25519 key; else UsageError
    saying what is wrong (length, alphabet, or not a point of the curve)."""
    import nacl.bindings  # only to add a contact: a read of the contacts loads no PyNaCl
    import nacl.exceptions

    key = decode_peer_id(peer_id)
    try:
        nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(key)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise UsageError(f"not a valid public key: {peer_id.strip()!r}") from exc
    return key


class Contacts:
    """The contact list in the home's database."""

    def __init__(self, node: Node, store: Store) -> None:
        self.node = node
        self.store = store
        self.own_key = node.identity.public_key
        store.migrate_component("names", MIGRATIONS)

    def resolve(self, name: str) -> bytes:
        """A peer by contact nickname, full id, or unambiguous id prefix of anyone known."""
        name = name.strip()
        rows = self.store.query("SELECT peer_id FROM contacts WHERE name = ?", (name,))
        if rows:
            return decode_peer_id(rows[0]["peer_id"])
        if len(name) == 52:
            return decode_peer_id(name)
        lowered = name.lower()
        if not lowered:
            raise PeerNameError("empty peer name")
        known = self._known_peers()
        for table in ("contacts", "conversations"):
            rows = self.store.query(f"SELECT peer_id FROM {table} WHERE peer_id IS NOT NULL")
            known.update(r["peer_id"] for r in rows)
        matches = sorted(p for p in known if p.startswith(lowered))
        if len(matches) == 1:
            return decode_peer_id(matches[0])
        if not matches:
            raise PeerNameError(f"no contact or known peer matches {name!r}")
        raise PeerNameError(f"{name!r} matches {len(matches)} peers; give more of the id")

    def _known_peers(self) -> set[str]:
        """The ids of the peers the node knows beyond the database (neighbours, paths)."""
        return {encode_peer_id(k) for k in self.node.known_peers()}

    def add(self, peer: str, name: str | None = None) -> dict[str, Any]:
        """Add a contact, or rename one; a direct conversation it started stops being a request.

        A full peer id must be a valid Ed25519 key (UsageError otherwise)."""
        key = check_peer_key(peer) if len(peer.strip()) == 52 else self.resolve(peer)
        if key == self.own_key:
            raise UsageError("you cannot add yourself as a contact")
        if name is not None:
            name = name.strip()
            if not 0 < len(name) <= MAX_NAME:
                raise UsageError(f"a nickname has 1..{MAX_NAME} characters")
        peer_id = encode_peer_id(key)
        taken = self.store.query(
            "SELECT peer_id FROM contacts WHERE name = ? AND peer_id != ?", (name, peer_id)
        )
        if name and taken:
            raise UsageError(f"the nickname {name!r} is taken by {taken[0]['peer_id'][:8]}")
        with self.store.atomic():
            self.store.execute(
                "INSERT INTO contacts (peer_id, name, verified, added_at) VALUES (?, ?, 0, ?)"
                " ON CONFLICT(peer_id) DO UPDATE SET name = COALESCE(excluded.name, name)",
                (peer_id, name or None, self.node.clock()),
            )
            self.store.execute(
                "UPDATE conversations SET state = 'active' WHERE kind = 'dm' AND peer_id = ?",
                (peer_id,),
            )
        return self.get(peer_id)

    def rename(self, peer: str, name: str) -> dict[str, Any]:
        """Give a contact a new nickname (UsageError if it is not a contact, or the name is
        taken or empty)."""
        peer_id = encode_peer_id(self.resolve(peer))
        self.get(peer_id)
        if not name.strip():
            raise UsageError(f"a nickname has 1..{MAX_NAME} characters")
        return self.add(peer_id, name)

    def remove(self, peer: str) -> dict[str, Any]:
        """Remove a contact (its conversation and history stay; a later DM from it is a request
        again). Returns the contact as it was."""
        peer_id = encode_peer_id(self.resolve(peer))
        contact = self.get(peer_id)
        self.store.execute("DELETE FROM contacts WHERE peer_id = ?", (peer_id,))
        return contact

    def block(self, peer: str, blocked: bool = True) -> dict[str, Any]:
        """Block a peer (contact or not): the chat layer drops its messages and history leaves
        them out; or unblock it. Returns {"peer_id", "name", "blocked"}."""
        key = self.resolve(peer)
        if key == self.own_key:
            raise UsageError("you cannot block yourself")
        peer_id = encode_peer_id(key)
        if blocked:
            self.store.execute(
                "INSERT OR IGNORE INTO blocked (peer_id, blocked_at) VALUES (?, ?)",
                (peer_id, self.node.clock()),
            )
        else:
            self.store.execute("DELETE FROM blocked WHERE peer_id = ?", (peer_id,))
        return {"peer_id": peer_id, "name": self.display_name(peer_id), "blocked": blocked}

    def is_blocked(self, peer_id: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM blocked WHERE peer_id = ?", (peer_id,)))

    def blocked(self) -> set[str]:
        """The ids of every blocked peer."""
        return {r["peer_id"] for r in self.store.query("SELECT peer_id FROM blocked")}

    def learn_name(self, peer_id: str, name: str, ts_ms: int) -> bool:
        """Keep the display name a peer announced (in a record signed at `ts_ms`), unless a
        newer one is kept; return whether it changed."""
        from mesh.runtime.addressbook import clean_name  # it imports the router: not at start

        name = clean_name(name)
        if not name or peer_id == encode_peer_id(self.own_key):
            return False
        rows = self.store.query("SELECT name, ts_ms FROM peer_names WHERE peer_id = ?", (peer_id,))
        if rows and (rows[0]["ts_ms"] >= ts_ms or rows[0]["name"] == name):
            return False
        self.store.execute(
            "INSERT INTO peer_names (peer_id, name, ts_ms) VALUES (?, ?, ?) ON CONFLICT(peer_id)"
            " DO UPDATE SET name = excluded.name, ts_ms = excluded.ts_ms",
            (peer_id, name, ts_ms),
        )
        return True

    def own_name_of(self, peer_id: str) -> str | None:
        """The display name the peer announced itself, if we learned one."""
        rows = self.store.query("SELECT name FROM peer_names WHERE peer_id = ?", (peer_id,))
        return str(rows[0]["name"]) if rows else None

    def display_name(self, peer_id: str) -> str:
        """How to show a peer: its contact nickname, else its own announced name, else the
        first 8 characters of its id."""
        return self.name_of(peer_id) or self.own_name_of(peer_id) or peer_id[:8]

    def names(self) -> dict[str, str]:
        """display_name for every peer with a nickname or an announced name."""
        shown = {r["peer_id"]: r["name"] for r in self.store.query("SELECT * FROM peer_names")}
        for row in self.store.query("SELECT peer_id, name FROM contacts WHERE name IS NOT NULL"):
            shown[row["peer_id"]] = row["name"]
        return shown

    def verify(self, peer: str, verified: bool = True) -> dict[str, Any]:
        """Mark a contact verified (its safety number was compared out of band), or not."""
        peer_id = encode_peer_id(self.resolve(peer))
        if not self.store.execute(
            "UPDATE contacts SET verified = ? WHERE peer_id = ?", (int(verified), peer_id)
        ):
            raise UsageError(f"{peer_id[:8]} is not a contact; add it first")
        return self.get(peer_id)

    def get(self, peer_id: str) -> dict[str, Any]:
        rows = self.store.query("SELECT * FROM contacts WHERE peer_id = ?", (peer_id,))
        if not rows:
            raise UsageError(f"{peer_id[:8]} is not a contact")
        return self._view(rows[0])

    def all(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM contacts ORDER BY name, peer_id")
        return [self._view(row) for row in rows]

    def name_of(self, peer_id: str) -> str | None:
        """A contact's nickname, if it is a contact with one."""
        rows = self.store.query("SELECT name FROM contacts WHERE peer_id = ?", (peer_id,))
        return str(rows[0]["name"]) if rows and rows[0]["name"] else None

    def is_contact(self, peer_id: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM contacts WHERE peer_id = ?", (peer_id,)))

    def reachable(self, peer: str) -> bool:
        """Whether this node knows a live route to the peer (nickname, id or id prefix) now."""
        key = self.resolve(peer)
        return self.node.router.route_to(key, self.node.clock()) is not None

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        peer_id = row["peer_id"]
        own_name = self.own_name_of(peer_id)
        return {
            "peer_id": peer_id,
            "name": row["name"],
            "own_name": own_name,
            "display_name": row["name"] or own_name or peer_id[:8],
            "verified": bool(row["verified"]),
            "blocked": self.is_blocked(peer_id),
            "safety_number": safety_number(self.own_key, decode_peer_id(peer_id)),
        }
