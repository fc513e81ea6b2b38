"""One note: a pycrdt document with the body under ``body`` (Text) and metadata under ``meta``.

The root names are those any Yjs client binds (``ydoc.getText("body")``,
``ydoc.getMap("meta")``). Edits take Python string offsets and are
converted to pycrdt's UTF-8 byte offsets here, at the boundary.

Updates leave a note in two ways, and the difference matters:

- local edits (this process, through :meth:`Note.insert` and friends) are
  seen by the document observer and handed to `on_local_update`;
- updates applied from elsewhere (the mesh, the Yjs bridge) go through
  :meth:`Note.apply_update`, which silences the observer: the caller forwards
  the update bytes it received, never what the observer reports for them —
  pycrdt may integrate a pending update inside a later apply, and deciding
  from observe events would then lose it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycrdt

from crdt.errors import NoteUpdateError, NoteUsageError
from crdt.offsets import Utf8Offsets

UpdateHandler = Callable[[bytes], None]


class Note:
    """A note's document and the conversions around it."""

    def __init__(self, on_local_update: UpdateHandler | None = None) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.body = self.doc.get("body", type=pycrdt.Text)
        self.meta = self.doc.get("meta", type=pycrdt.Map)
        self.on_local_update = on_local_update
        self.on_change: list[Callable[[], None]] = []
        self._applying = False
        # offsets: while the text is all ASCII a length is enough; else a chunked mirror
        self._ascii_length: int | None = 0
        self._offsets: Utf8Offsets | None = None
        self._subscription = self.doc.observe(self._observed)

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
        length = len(self)
        if not 0 <= index <= length:
            raise NoteUsageError(f"position {index} is outside the note (0..{length})")
        if not text:
            return
        if self._ascii_length is not None and text.isascii():
            self.body.insert(index, text)  # all ASCII: characters are bytes
            self._ascii_length += len(text)
            return
        offsets = self._mirror()
        self.body.insert(offsets.to_bytes(index), text)
        offsets.insert(index, text)

    def delete(self, index: int, length: int) -> None:
        """Delete `length` characters starting at character `index`."""
        if index < 0 or length < 0 or index + length > len(self):
            raise NoteUsageError(f"deletion {index}+{length} is outside the note")
        if not length:
            return
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
            self.delete(0, len(self))
            self.insert(0, text)

    def set_meta(self, key: str, value: object) -> None:
        self.meta[key] = value

    def apply_patches(self, patches: list[tuple[int, int, str]]) -> None:
        """Apply (position, delete count, inserted text) patches in one transaction."""
        if len(patches) == 1 and not (patches[0][1] and patches[0][2]):
            self._apply_patch(*patches[0])  # one edit is one transaction already
            return
        with self.doc.transaction():
            for patch in patches:
                self._apply_patch(*patch)

    def _apply_patch(self, position: int, deleted: int, inserted: str) -> None:
        if deleted:
            self.delete(position, deleted)
        if inserted:
            self.insert(position, inserted)

    # -- updates ---------------------------------------------------------------

    def _observed(self, event: pycrdt.TransactionEvent) -> None:
        if self._applying:
            return
        if self.on_local_update is not None:
            self.on_local_update(bytes(event.update))
        for callback in self.on_change:
            callback()

    def apply_update(self, update: bytes) -> None:
        """Apply an update from elsewhere; the observer stays silent (see the module docstring)."""
        self._applying = True
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            # pycrdt raises plain exceptions for most undecodable updates, and a pyo3
            # PanicException (a BaseException) for some: neither may escape to the link
            reraise_unless_decoding(exc)
            raise NoteUpdateError(f"cannot apply a note update: {exc}") from exc
        finally:
            self._applying = False
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
