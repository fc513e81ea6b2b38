"""Moving a home's database to another key (or to none, or from none), without losing it.

A passphrase change re-encrypts the whole database into a new file, and the
switch is committed by rewriting the key file, which then seals the new store
key (mesh/wire/identity.py). The steps, each durable before the next:

1. :func:`prepare`: checkpoint the WAL into the database, export everything
   (``sqlcipher_export``) into ``meshnotes.db.rekey`` under the new key, copy
   the schema version, fsync it, and verify it: it opens with the new key, passes
   ``integrity_check``, and holds as many rows in every table as the original.
   The original is not touched.
2. The caller rewrites the key file (atomic rename + directory fsync): the
   commit point.
3. :func:`settle`: the ``.rekey`` file replaces the database (atomic rename +
   directory fsync).

:func:`settle` also runs before the database is opened for writing, and
decides what a crash left behind from the key the key file holds now: a
``.rekey`` file that opens with that key was committed (step 2 happened) and
replaces the database; any other is an unfinished export and is deleted. Either
way nothing already stored is lost: until step 3 the original stays where it
was, and step 3 only happens once the new file was verified.

Nobody may write to the database meanwhile: the caller makes sure no node runs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mesh.errors import StorageError
from mesh.storage import store as _store
from mesh.storage.store import Store
from mesh.wire.keyfile import fsync_directory


def pending(database: Path) -> Path:
    """Where the re-encrypted copy of `database` is written."""
    return database.with_name(database.name + ".rekey")


def _remove(path: Path) -> None:
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _key_sql(key: bytes | None) -> str:
    return "" if key is None else f"x'{key.hex()}'"


def _counts(store: Store) -> dict[str, int]:
    tables = store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {
        t["name"]: int(store.query(f'SELECT count(*) AS n FROM "{t["name"]}"')[0]["n"])
        for t in tables
    }


def prepare(database: Path, old_key: bytes | None, new_key: bytes | None) -> None:
    """Write `database`, re-encrypted under `new_key`, to its ``.rekey`` file and verify it.

    Raises StorageError (the original untouched, the partial copy removed) when
    anything fails.
    """
    target = pending(database)
    _remove(target)
    # made owner-only before SQLite fills it (a copy on its way to the clear is plaintext)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = Store(database, key=old_key, cipher=True)
    try:
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        version = int(source.query("PRAGMA user_version")[0]["user_version"])
        before = _counts(source)
        try:
            source.db.conn.execute(
                "ATTACH DATABASE ? AS rekey KEY ?", (str(target), _key_sql(new_key))
            )
            source.db.conn.execute("SELECT sqlcipher_export('rekey')")
            source.db.conn.execute(f"PRAGMA rekey.user_version = {version}")
            source.db.conn.execute("DETACH DATABASE rekey")
        except _store.DB_ERRORS as exc:
            raise StorageError(f"cannot re-encrypt the database: {exc}") from exc
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(target.parent)
        copy = Store(target, readonly=True, key=new_key)  # read-only: it grows no WAL
        try:
            if not copy.integrity_ok() or _counts(copy) != before:
                raise StorageError("the re-encrypted copy of the database does not match it")
        finally:
            copy.close()
    except BaseException:
        source.close()
        _remove(target)
        raise
    source.close()


def settle(database: Path, key: bytes | None) -> bool:
    """Finish or undo a key change a crash interrupted; return whether one was finished.

    `key` is the store key the key file holds now (None: the database is plain).
    """
    target = pending(database)
    if not target.exists():
        return False
    try:
        copy = Store(target, readonly=True, key=key)
        committed = copy.integrity_ok()
        copy.close()
    except _store.DB_ERRORS + (StorageError,):  # noqa: RUF005 (mypy: a starred tuple)
        committed = False
    if not committed:
        _remove(target)  # the key file never took the new key: the export is void
        return False
    for stale in ("-wal", "-shm"):  # the original's: checkpointed in prepare, no use now
        with contextlib.suppress(FileNotFoundError):
            database.with_name(database.name + stale).unlink()
    os.replace(target, database)
    fsync_directory(database.parent)
    _remove(target)  # its own -wal/-shm, if verification left any
    return True
