"""Notes as files: the Markdown (or any UTF-8 text) that ``note import`` reads and ``note export``
writes, with one line for the user when the file cannot be read or written."""

from __future__ import annotations

from pathlib import Path

from crdt.errors import NoteUsageError


def read_text_file(path: Path) -> str:
    """A note's text from a UTF-8 file (``note import``), or one line saying why not."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NoteUsageError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc


def write_text_file(path: Path, text: str) -> int:
    """Write a note's text to a file (``note export``); the number of characters written."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NoteUsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(text)
