"""The notes package's exceptions, part of the mesh family so front ends catch one root.

::

    MeshError (mesh.errors)
    └── NoteError              anything about notes
        ├── NoteUsageError     bad local input: unknown note, edit out of range, file unreadable
        └── NoteUpdateError    a remote update that cannot be opened or applied
"""

from __future__ import annotations

from mesh.errors import MeshError, UsageError


class NoteError(MeshError):
    """Root of the notes package's errors."""


class NoteUsageError(NoteError, UsageError):
    """The local caller named an unknown note, edited out of range, or gave a bad file."""


class NoteUpdateError(NoteError):
    """A remote note update failed decryption or could not be applied.

    `reason` is the short name its refusal is counted under (``notes_rejected_<reason>``).
    """

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason
