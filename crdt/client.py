"""The notes verbs, each named once, and the client front ends use for every verb.

:class:`crdt.service.NotesService` serves the :class:`NoteVerb` names;
:class:`Client` adds one method per notes verb to the chat verbs of
:class:`chat.client.ChatClient`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chat.client import ChatClient


class NoteVerb(StrEnum):
    """The control verbs of the notes layer (the names on the wire)."""

    NEW = "note.new"
    LIST = "note.list"
    CAT = "note.cat"
    APPEND = "note.append"
    IMPORT = "note.import"
    EXPORT = "note.export"
    RENAME = "note.rename"
    #: a front end's copy of a note: its whole state, then its edits (see tui/attached.py)
    STATE = "note.state"
    EDIT = "note.edit"
    #: where this peer's cursor is in a note (shown to the others: crdt/awareness.py)
    CURSOR = "note.cursor"
    #: a note's versions (crdt/versions.py)
    HISTORY = "note.history"
    VERSION = "note.version"
    RESTORE = "note.restore"
    DELETE = "note.delete"
    UNDELETE = "note.undelete"


class Client(ChatClient):
    """Calls a running node's chat and notes verbs over its control socket (blocking)."""

    def note_new(self, room: str, title: str) -> dict[str, Any]:
        """{"note_id"} of a new note in `room`."""
        result: dict[str, Any] = self.call(NoteVerb.NEW, {"room": room, "title": title})
        return result

    def note_list(self, room: str | None = None, deleted: bool = False) -> list[dict[str, Any]]:
        """The notes (of a room), with `deleted` the deleted ones too."""
        result: list[dict[str, Any]] = self.call(NoteVerb.LIST, {"room": room, "deleted": deleted})
        return result

    def note_delete(self, note: str, undo: bool = False) -> dict[str, Any]:
        """Delete a note for everyone (`undo`: undelete it): {"note_id", "deleted"}."""
        result: dict[str, Any] = self.call(
            NoteVerb.UNDELETE if undo else NoteVerb.DELETE, {"note": note}
        )
        return result

    def note_cat(self, note: str) -> dict[str, Any]:
        """{"note_id", "text"} of a note named by id, id prefix or title."""
        result: dict[str, Any] = self.call(NoteVerb.CAT, {"note": note})
        return result

    def note_append(self, note: str, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(NoteVerb.APPEND, {"note": note, "text": text})
        return result

    def note_import(self, room: str, title: str, text: str) -> dict[str, Any]:
        request = {"room": room, "title": title, "text": text}
        result: dict[str, Any] = self.call(NoteVerb.IMPORT, request)
        return result

    def note_rename(self, note: str, title: str) -> dict[str, Any]:
        """{"note_id", "title"} after giving a note a new title."""
        result: dict[str, Any] = self.call(NoteVerb.RENAME, {"note": note, "title": title})
        return result

    def note_history(self, note: str) -> dict[str, Any]:
        """{"note_id", "versions": [{version, author, ts, title, chars}]}, oldest first."""
        result: dict[str, Any] = self.call(NoteVerb.HISTORY, {"note": note})
        return result

    def note_version(self, note: str, version: int) -> dict[str, Any]:
        """{"note_id", "version", "text"} of one version."""
        request = {"note": note, "version": version}
        result: dict[str, Any] = self.call(NoteVerb.VERSION, request)
        return result

    def note_restore(self, note: str, version: int) -> dict[str, Any]:
        """Make a version's text the note's, as a new edit: {"note_id", "version", "length"}."""
        request = {"note": note, "version": version}
        result: dict[str, Any] = self.call(NoteVerb.RESTORE, request)
        return result

    def note_state(self, note: str) -> dict[str, Any]:
        """{"note_id", "state"}: the note's whole document as one Yjs update (base64)."""
        result: dict[str, Any] = self.call(NoteVerb.STATE, {"note": note})
        return result

    def note_export(self, note: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(NoteVerb.EXPORT, {"note": note})
        return result
