"""One note: a pycrdt document with the body under ``body`` (Text) and metadata under ``meta``.

The root names are those any Yjs client binds (``ydoc.getText("body")``,
``ydoc.getMap("meta")``). Edits take Python string offsets and are
converted to pycrdt's UTF-8 byte offsets here, at the boundary.

Updates leave a note in two ways, and the difference matters:

- local edits (this process, through :meth:`Note.insert` and friends) are
  not observed one by one: an observer makes pycrdt encode an update for
  every transaction, which costs more than the edit itself on a long note.
  The first edit after a take calls `on_local_edit`; the owner then takes
  everything edited since the last take as one update,
  :meth:`Note.take_local_update` (``doc.get_update(state vector of the last
  take)``, so a diff also carries the note's whole delete set);
- updates applied from elsewhere (the mesh, the Yjs bridge) go through
  :meth:`Note.apply_update`, which first sets aside the local edits not yet
  taken and then moves the state vector of the last take past the applied
  update, so that a remote update never leaks into a local diff. The caller
  forwards the update bytes it received, never a diff of them — pycrdt may
  hold an update whose dependencies are missing and integrate it inside a
  later apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycrdt

from crdt.errors import NoteUpdateError, NoteUsageError
from crdt.offsets import Utf8Offsets

#: inserted bytes (plus a per-edit allowance) after which `on_local_edit` asks for a take
TAKE_HINT_BYTES = 48 * 1024
#: what one edit is counted for besides its text (item headers, a deletion)
EDIT_ALLOWANCE = 16

EditHandler = Callable[[bool], None]


class Note:
    """A note's document and the conversions around it."""

    def __init__(self, on_local_edit: EditHandler | None = None) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.body = self.doc.get("body", type=pycrdt.Text)
        self.meta = self.doc.get("meta", type=pycrdt.Map)
        #: called with False at the first local edit after a take, and with True when the
        #: edits since the last take pass TAKE_HINT_BYTES (time to take them now)
        self.on_local_edit = on_local_edit
        #: called after every local edit and every applied update (front ends redraw)
        self.on_change: list[Callable[[], None]] = []
        self._taken_state = bytes(self.doc.get_state())  # state vector of the last take
        self._set_aside: list[bytes] = []  # local diffs taken before a remote apply
        self._edited = 0  # bytes edited since the last take (an estimate)
        self._notified = False  # on_local_edit was told since the last take
        self._hinted = False  # ... and told to take now
        self._fresh = False  # local edits since the last take or set-aside
        # offsets: while the text is all ASCII a length is enough; else a chunked mirror
        self._ascii_length: int | None = 0
        self._offsets: Utf8Offsets | None = None

    # -- reading ---------------------------------------------------------------

    @property
    def text(self) -> str:
        return str(self.body)

    @property
    def title(self) -> str:
        value = self.meta.get("title")
        return value if isinstance(value, str) else ""

    # -- local edits -----------------------------------------------------------

    def _ready(self) -> None:
        """Make the offset bookkeeping current: a length while all is ASCII, else a mirror."""
        if self._ascii_length is None and self._offsets is None:  # a remote update came
            text = self.text
            if text.isascii():
                self._ascii_length = len(text)
            else:
                self._offsets = Utf8Offsets(text)

    def __len__(self) -> int:
        self._ready()
        if self._ascii_length is not None:
            return self._ascii_length
        assert self._offsets is not None
        return len(self._offsets)

    def _mirror(self) -> Utf8Offsets:
        """The character -> byte mirror, built (once) when the first non-ASCII text appears."""
        if self._offsets is None:
            self._offsets = Utf8Offsets(self.text)
            self._ascii_length = None
        return self._offsets

    def insert(self, index: int, text: str) -> None:
        """Insert `text` before character `index`."""
        self._insert(index, text)
        self._local_edit()

    def _insert(self, index: int, text: str) -> None:
        length = len(self)
        if not 0 <= index <= length:
            raise NoteUsageError(f"position {index} is outside the note (0..{length})")
        if not text:
            return
        if self._ascii_length is not None and text.isascii():
            self.body.insert(index, text)  # all ASCII: characters are bytes
            self._ascii_length += len(text)
            self._edited += len(text) + EDIT_ALLOWANCE
            return
        offsets = self._mirror()
        self.body.insert(offsets.to_bytes(index), text)
        offsets.insert(index, text)
        self._edited += 4 * len(text) + EDIT_ALLOWANCE

    def delete(self, index: int, length: int) -> None:
        """Delete `length` characters starting at character `index`."""
        self._delete(index, length)
        self._local_edit()

    def _delete(self, index: int, length: int) -> None:
        if index < 0 or length < 0 or index + length > len(self):
            raise NoteUsageError(f"deletion {index}+{length} is outside the note")
        if not length:
            return
        self._edited += EDIT_ALLOWANCE
        if self._ascii_length is not None:
            del self.body[index : index + length]
            self._ascii_length -= length
            return
        offsets = self._mirror()
        start = offsets.to_bytes(index)
        end = offsets.to_bytes(index + length)
        del self.body[start:end]
        offsets.delete(index, length)

    def append(self, text: str) -> None:
        self.insert(len(self), text)

    def replace_all(self, text: str) -> None:
        with self.doc.transaction():
            self._delete(0, len(self))
            self._insert(0, text)
        self._local_edit()

    def set_meta(self, key: str, value: object) -> None:
        self.meta[key] = value
        self._edited += EDIT_ALLOWANCE + len(str(value))
        self._local_edit()

    def apply_patches(self, patches: list[tuple[int, int, str]]) -> None:
        """Apply (position, delete count, inserted text) patches in one transaction."""
        if len(patches) == 1 and self._ascii_length is not None:
            # the common case, typing into an all-ASCII note, without the general path's calls
            position, deleted, inserted = patches[0]
            length = self._ascii_length
            if not deleted and inserted and inserted.isascii() and 0 <= position <= length:
                self.body.insert(position, inserted)
                self._ascii_length = length + len(inserted)
                self._edited += len(inserted) + EDIT_ALLOWANCE
                self._local_edit()
                return
            if deleted > 0 and not inserted and position >= 0 and position + deleted <= length:
                del self.body[position : position + deleted]
                self._ascii_length = length - deleted
                self._edited += EDIT_ALLOWANCE
                self._local_edit()
                return
        if len(patches) == 1 and not (patches[0][1] and patches[0][2]):
            self._apply_patch(*patches[0])  # one edit is one transaction already
        else:
            with self.doc.transaction():
                for patch in patches:
                    self._apply_patch(*patch)
        self._local_edit()

    def _apply_patch(self, position: int, deleted: int, inserted: str) -> None:
        if deleted:
            self._delete(position, deleted)
        if inserted:
            self._insert(position, inserted)

    def _local_edit(self) -> None:
        """Tell the owner (at the first edit after a take, and when the edits grow large)."""
        self._fresh = True
        if not self._notified:
            self._notified = True
            self._hinted = self._edited >= TAKE_HINT_BYTES
            if self.on_local_edit is not None:
                self.on_local_edit(self._hinted)
        elif not self._hinted and self._edited >= TAKE_HINT_BYTES:
            self._hinted = True
            if self.on_local_edit is not None:
                self.on_local_edit(True)
        if self.on_change:
            for callback in self.on_change:
                callback()

    # -- updates ---------------------------------------------------------------

    def take_local_update(self) -> bytes | None:
        """Everything edited here since the last take, as one update; None when nothing was.

        Direct edits of `doc` (not through this class) are taken too, but only
        the next take — scheduled by an edit through this class or the owner's
        own flush — sends them.
        """
        parts = self._set_aside
        if self._fresh:
            parts.append(bytes(self.doc.get_update(self._taken_state)))
        else:
            state = bytes(self.doc.get_state())
            if state != self._taken_state:  # a direct edit of the document
                parts.append(bytes(self.doc.get_update(self._taken_state)))
        self._set_aside = []
        self._taken_state = bytes(self.doc.get_state())
        self._edited = 0
        self._fresh = self._notified = self._hinted = False
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else bytes(pycrdt.merge_updates(*parts))

    def apply_update(self, update: bytes) -> None:
        """Apply an update from elsewhere; it never shows in a local diff (see the module)."""
        if self._fresh or bytes(self.doc.get_state()) != self._taken_state:
            # local edits not taken yet: set them aside, or the diff after this apply
            # (against a state vector past the remote update) would miss their items
            self._set_aside.append(bytes(self.doc.get_update(self._taken_state)))
            self._fresh = False  # the owner's take is still scheduled
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            # pycrdt raises plain exceptions for most undecodable updates, and a pyo3
            # PanicException (a BaseException) for some: neither may escape to the link
            reraise_unless_decoding(exc)
            raise NoteUpdateError(f"cannot apply a note update: {exc}") from exc
        self._taken_state = bytes(self.doc.get_state())
        self._offsets = None
        self._ascii_length = None
        for callback in self.on_change:
            callback()

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def update_since(self, state_vector: bytes | None = None) -> bytes:
        """Everything the holder of `state_vector` lacks (everything, without one)."""
        if state_vector is None:
            return bytes(self.doc.get_update())
        try:
            return bytes(self.doc.get_update(state_vector))
        except BaseException as exc:  # a malformed state vector (from a Yjs client)
            reraise_unless_decoding(exc)
            raise NoteUpdateError(f"cannot read a state vector: {exc}") from exc


def reraise_unless_decoding(exc: BaseException) -> None:
    """Let through what pycrdt raises for bad input (errors, panics); re-raise anything else."""
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        raise exc
