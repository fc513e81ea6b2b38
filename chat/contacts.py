"""Contacts: nicknames, safety numbers and the verified flag; and naming peers by them."""

from __future__ import annotations

from typing import Any

from mesh.errors import PeerNameError, UsageError
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.identity import decode_peer_id, encode_peer_id, safety_number

MAX_NAME = 100


class Contacts:
    """The contact list in the home's database."""

    def __init__(self, node: Node, store: Store) -> None:
        self.node = node
        self.store = store
        self.own_key = node.identity.public_key

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
        known = {encode_peer_id(k) for k in self.node.known_peers()}
        for table in ("contacts", "conversations"):
            rows = self.store.query(f"SELECT peer_id FROM {table} WHERE peer_id IS NOT NULL")
            known.update(r["peer_id"] for r in rows)
        matches = sorted(p for p in known if p.startswith(lowered))
        if len(matches) == 1:
            return decode_peer_id(matches[0])
        if not matches:
            raise PeerNameError(f"no contact or known peer matches {name!r}")
        raise PeerNameError(f"{name!r} matches {len(matches)} peers; give more of the id")

    def add(self, peer: str, name: str | None = None) -> dict[str, Any]:
        """Add a contact, or rename one; a direct conversation it started stops being a request."""
        key = self.resolve(peer)
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
        return {
            "peer_id": row["peer_id"],
            "name": row["name"],
            "verified": bool(row["verified"]),
            "safety_number": safety_number(self.own_key, decode_peer_id(row["peer_id"])),
        }
