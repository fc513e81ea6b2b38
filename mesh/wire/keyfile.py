"""The key file on disk: what can be read of it without unsealing it, and how it is written.

The file is JSON (its format and the sealing are in :mod:`mesh.wire.identity`);
its peer id, name, and whether it is sealed or seals a store key are readable
without the passphrase or any cryptography, so that a read of the database
loads no PyNaCl. Writes are atomic and owner-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mesh.errors import IdentityError, UsageError
from mesh.wire.peerid import decode_peer_id


def read_record(path: Path) -> dict[str, object]:
    """The key file's JSON object; IdentityError when it is unreadable or no object."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IdentityError(f"the key file {path} is unreadable or corrupt") from exc
    if not isinstance(record, dict):
        raise IdentityError(f"the key file {path} is unreadable or corrupt")
    return record


def read_public(path: Path) -> tuple[str, str]:
    """Return the (peer id, name) a key file declares, without unsealing its secret."""
    try:
        record = json.loads(path.read_bytes())
        peer_id, name = record["peer_id"], record.get("name", "")
        decode_peer_id(peer_id)
    except (OSError, ValueError, KeyError, TypeError, UsageError) as exc:
        raise IdentityError(f"the key file {path} is unreadable or corrupt") from exc
    return peer_id, str(name)


def has_store_key(path: Path) -> bool:
    """Whether the key file seals a store key (the database is encrypted), without
    unsealing anything."""
    return "store" in read_record(path)


def is_locked(path: Path) -> bool:
    """Whether the key file's seed is sealed with a passphrase."""
    seed = read_record(path).get("seed")
    return isinstance(seed, dict) and seed.get("kdf") != "none"


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a leftover temp file would keep its old mode
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    """Make a rename in directory `path` durable (a crash may otherwise undo it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
