"""The notes API's operations on whole notes: rename, read, append, import, export, restore,
delete and undelete. A part of :class:`crdt.notes.Notes` (its base), kept apart to keep each
module readable; the names it uses are the class's own (see the annotations below).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crdt import tombstones
from crdt.documents import Documents
from crdt.errors import NoteUsageError
from crdt.note import Note
from crdt.textfiles import read_text_file, write_text_file
from crdt.versions import Versions
from mesh.storage.store import Store
from mesh.wire.identity import Identity

#: the most text an imported note sends in one piece (each fits one envelope)
IMPORT_PIECE = 16 * 1024
MAX_TITLE = 200


def check_title(title: str) -> str:
    """A title as given, trimmed; NoteUsageError if it is empty or too long."""
    title = title.strip()
    if not 0 < len(title) <= MAX_TITLE:
        raise NoteUsageError(f"a title has 1..{MAX_TITLE} characters")
    return title


class NoteEditing:
    """Operations on whole notes, over what :class:`crdt.notes.Notes` provides."""

    documents: Documents
    store: Store
    versions: Versions
    identity: Identity

    def resolve(self, name: str) -> str:
        raise NotImplementedError

    def get(self, name: str) -> Note:
        raise NotImplementedError

    def new(self, room: str, title: str) -> str:
        raise NotImplementedError

    def flush(self, note_id: str) -> None:
        raise NotImplementedError

    def room_of(self, note_id: str) -> str | None:
        raise NotImplementedError

    def _room_authority(self, note_id: str) -> tuple[set[str], str | None]:
        raise NotImplementedError

    def rename(self, name: str, title: str) -> None:
        """Give a note a new title (it travels like any edit)."""
        title = check_title(title)
        note_id = self.resolve(name)
        self.documents.open(note_id).set_meta("title", title)
        self.store.execute("UPDATE notes SET title = ? WHERE note_id = ?", (title, note_id))
        self.flush(note_id)

    def cat(self, name: str) -> str:
        return self.get(name).text

    def append(self, name: str, text: str) -> None:
        note_id = self.resolve(name)
        self.documents.open(note_id).append(text)
        self.flush(note_id)

    def import_file(self, room: str, path: Path, title: str | None = None) -> str:
        """Create a note from a Markdown (or any UTF-8 text) file; return its id."""
        return self.import_text(room, title or path.stem, read_text_file(path))

    def import_text(self, room: str, title: str, text: str) -> str:
        """Create a note holding `text`, sent in pieces that each fit one envelope."""
        note_id = self.new(room, title)
        note = self.documents.open(note_id)
        for start in range(0, len(text), IMPORT_PIECE):
            note.append(text[start : start + IMPORT_PIECE])
            self.flush(note_id)
        return note_id

    def export(self, name: str, path: Path) -> int:
        """Write a note's text to a file; return the number of characters written."""
        return write_text_file(path, self.cat(name))

    def restore(self, name: str, version: int) -> str:
        """Make a version's text the note's, as one new edit; the note's id."""
        note_id = self.resolve(name)
        self.documents.open(note_id).replace_all(self.versions.text(note_id, version))
        self.flush(note_id)
        return note_id

    # -- deleting ----------------------------------------------------------------------

    def delete(self, name: str) -> str:
        """Delete a note for every member (a signed tombstone; see crdt/tombstones.py)."""
        note_id = self.resolve(name)
        if self.deleted(note_id) is not None:
            raise NoteUsageError("that note is deleted already")
        return self._tombstone(note_id, "delete")

    def undelete(self, name: str) -> str:
        """Undo a note's delete: its deleter or the room's admin, within the grace period."""
        note_id = self.resolve(name)
        deleted = self.deleted(note_id)
        if deleted is None:
            raise NoteUsageError("that note is not deleted")
        _, admin = self._room_authority(note_id)
        if self.identity.peer_id not in (deleted["by"], admin):
            raise NoteUsageError("only the member who deleted it, or the room's admin, may")
        if time.time() - deleted["at"] > tombstones.GRACE:
            raise NoteUsageError("its delete is final: the grace period is over")
        return self._tombstone(note_id, "undelete")

    def _tombstone(self, note_id: str, op: str) -> str:
        tombstones.add(self.documents.open(note_id), self.identity, note_id, op, time.time())
        self.flush(note_id)
        return note_id

    def deleted(self, note_id: str) -> dict[str, Any] | None:
        """The delete in force on a note, {"by", "at"}, or None when it is live."""
        members, admin = self._room_authority(note_id)
        note = self.documents.open(note_id)
        return tombstones.state(note, note_id, members.__contains__, admin)
