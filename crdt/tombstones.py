"""Deleting a note: a signed tombstone every member honours, undone only by whom it allows.

A note's document holds, beside its text, an array ``tombstones`` of signed
statements, each a JSON object ``{"op": "delete"|"undelete", "by": PEER_ID,
"at": UNIX_TIME, "sig": BASE64}`` where ``sig`` is the Ed25519 signature by
``by`` of ``meshnotes-tombstone | note id | op | at``. They travel, merge and
catch up like any edit of the note.

Every member works out the same state from the same statements (:func:`state`):
only statements whose signature holds, by a member of the note's room, count,
taken in (at, by) order. Any member may delete a live note. A deleted note is
undeleted only by the member who deleted it or the room's admin, and only within
`GRACE` seconds of the delete; after that the delete is final. A deleted note
is left out of ``note list`` and the UI (``note list --all`` shows it); its
document stays, so that an undelete brings it back whole.

What it does not stop: any member can edit any part of a note's document,
these statements included; a member that removes a delete's statement from the
array brings the note back, as one that empties its text destroys it. The
signatures tell who did what; they cannot stop a member from vandalising.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import nacl.bindings
import nacl.exceptions
import pycrdt

from crdt.note import Note
from mesh.errors import UsageError
from mesh.wire.identity import Identity, decode_peer_id

#: how long after a delete it may be undone (seconds): 30 days
GRACE = 30 * 24 * 3600.0
ROOT = "tombstones"


def _message(note_id: str, op: str, at: float) -> bytes:
    return b"meshnotes-tombstone|" + f"{note_id}|{op}|{at!r}".encode()


def statements(note: Note) -> list[dict[str, Any]]:
    """The statements in a note's document, as stored (decoded; malformed ones left out)."""
    array = note.doc.get(ROOT, type=pycrdt.Array)
    found = []
    for item in array:
        try:
            value = json.loads(item) if isinstance(item, str) else None
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def add(note: Note, identity: Identity, note_id: str, op: str, at: float) -> None:
    """Append this peer's signed statement (a local edit of the note)."""
    signature = identity.sign(_message(note_id, op, at))
    statement = {
        "op": op,
        "by": identity.peer_id,
        "at": at,
        "sig": base64.b64encode(signature).decode(),
    }
    # a direct edit of the document: the owner's next flush takes and sends it
    note.doc.get(ROOT, type=pycrdt.Array).append(json.dumps(statement, sort_keys=True))


def _holds(note_id: str, statement: dict[str, Any]) -> bool:
    """Whether a statement is well formed and signed by whom it names."""
    try:
        op, by, at = statement["op"], statement["by"], statement["at"]
        if op not in ("delete", "undelete") or not isinstance(at, float | int):
            return False
        if not math.isfinite(float(at)):  # NaN, Infinity (json allows them)
            return False
        signature = base64.b64decode(str(statement["sig"]), validate=True)
        key = decode_peer_id(str(by))
        nacl.bindings.crypto_sign_open(signature + _message(note_id, op, float(at)), key)
    except (KeyError, ValueError, OverflowError, UsageError, nacl.exceptions.BadSignatureError):
        return False  # binascii.Error is a ValueError; a wrong-length signature too
    return True


def state(
    note: Note, note_id: str, is_member: Callable[[str], bool], admin: str | None
) -> dict[str, Any] | None:
    """The delete in force, ``{"by", "at"}``, or None when the note is live."""
    valid = sorted(
        (s for s in statements(note) if _holds(note_id, s) and is_member(str(s["by"]))),
        key=lambda s: (float(s["at"]), str(s["by"])),
    )
    deleted: dict[str, Any] | None = None
    for statement in valid:
        at, by = float(statement["at"]), str(statement["by"])
        if statement["op"] == "delete" and deleted is None:
            deleted = {"by": by, "at": at}
        elif statement["op"] == "undelete" and deleted is not None:
            allowed = by == deleted["by"] or (admin is not None and by == admin)
            if allowed and at - deleted["at"] <= GRACE:
                deleted = None
    return deleted
