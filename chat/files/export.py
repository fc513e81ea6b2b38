"""Writing a kept file out in the clear: checked against its root first, moved into place whole."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from chat.files.format import Descriptor, HashTree, leaf, open_chunk
from mesh.errors import StorageError, UsageError


def human_size(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def export_file(
    chunks: Callable[[Descriptor], Iterator[bytes]], descriptor: Descriptor, out: Path
) -> Path:
    """Open every sealed chunk of `descriptor` into `out` (a directory: under the file's name).

    The sealed bytes are checked against the root before a byte is written;
    the plaintext goes to a temporary file beside `out` and replaces it in one
    rename, so `out` is never half written. Blocking: a worker thread's job.
    """
    target = out / descriptor.name if out.is_dir() else out
    if not target.parent.is_dir():
        raise UsageError(f"no directory {target.parent} to write {target.name} into")
    _check(chunks, descriptor)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            for index, chunk in enumerate(chunks(descriptor)):
                file.write(open_chunk(descriptor.key, index, chunk))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def _check(chunks: Callable[[Descriptor], Iterator[bytes]], descriptor: Descriptor) -> None:
    """StorageError unless the kept sealed chunks hash to the descriptor's root."""
    try:
        leaves = [leaf(chunk) for chunk in chunks(descriptor)]
    except OSError as exc:
        raise StorageError(f"cannot read the kept copy of {descriptor.name}: {exc}") from exc
    if HashTree(leaves).root != descriptor.root:
        raise StorageError(f"the kept copy of {descriptor.name} is damaged; fetch it again")


def open_in_memory(
    chunks: Callable[[Descriptor], Iterator[bytes]], descriptor: Descriptor
) -> bytes:
    """A kept file's plaintext, checked against its root first, in memory only (a picture's
    preview: nothing in the clear touches the disk)."""
    _check(chunks, descriptor)
    try:
        return b"".join(
            open_chunk(descriptor.key, i, chunk) for i, chunk in enumerate(chunks(descriptor))
        )
    except OSError as exc:
        raise StorageError(f"cannot read the kept copy of {descriptor.name}: {exc}") from exc
