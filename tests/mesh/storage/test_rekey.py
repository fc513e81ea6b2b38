"""Tests for the encrypted store and mesh.storage.rekey: moving a database between keys
without losing anything, whatever step a crash stops it at."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.errors import StorageError
from mesh.storage import rekey
from mesh.storage.store import SCHEMA_VERSION, Store

OLD, NEW = bytes(range(32)), bytes(range(1, 33))
MARKER = "stored-marker-Zx81"


def filled(path: Path, key: bytes | None, rows: int = 200) -> Path:
    store = Store(path, key=key)
    with store.atomic():
        for i in range(rows):
            store.execute(
                "INSERT INTO messages VALUES (?, 'c', 'a', ?, 0, 0, 'received', 0, 0, ?)",
                (f"m{i}", f"{MARKER} {i}", i),
            )
    store.close()
    return path


def texts(path: Path, key: bytes | None) -> list[str]:
    store = Store(path, key=key)
    try:
        return [r["text"] for r in store.query("SELECT text FROM messages ORDER BY idx")]
    finally:
        store.close()


def everything_in(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


EXPECTED = [f"{MARKER} {i}" for i in range(200)]


def test_an_encrypted_database_holds_no_text_in_the_clear_a_plain_one_does(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "enc").mkdir()
    plain = Store(filled(tmp_path / "plain" / "db", None))  # left open: its WAL stays
    encrypted = Store(filled(tmp_path / "enc" / "db", OLD), key=OLD)
    assert MARKER.encode() in everything_in(tmp_path / "plain")  # the test can see text
    assert MARKER.encode() not in everything_in(tmp_path / "enc")
    assert [r["n"] for r in encrypted.query("SELECT count(*) AS n FROM messages")] == [200]
    plain.close()
    encrypted.close()


def test_a_wrong_key_or_none_is_one_clear_error(tmp_path: Path) -> None:
    db = filled(tmp_path / "db", OLD)
    with pytest.raises(StorageError, match="does not open with this passphrase"):
        Store(db, key=NEW)
    with pytest.raises(StorageError, match="does not open with this passphrase"):
        Store.open_readonly(db, key=NEW)
    with pytest.raises(StorageError, match="not a database"):
        Store(db)


@pytest.mark.parametrize(
    ("old", "new"), [(None, NEW), (OLD, NEW), (OLD, None)], ids=["set", "change", "remove"]
)
def test_prepare_then_settle_moves_everything_to_the_new_key(
    tmp_path: Path, old: bytes | None, new: bytes | None
) -> None:
    db = filled(tmp_path / "db", old)
    rekey.prepare(db, old, new)
    assert texts(db, old) == EXPECTED  # the original is untouched until settled
    assert rekey.settle(db, new)
    assert texts(db, new) == EXPECTED
    assert not rekey.pending(db).exists()
    store = Store.open_readonly(db, new)
    assert store.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
    store.close()
    if new is not None:
        with pytest.raises(StorageError):
            Store(db, key=old)


def test_a_crash_before_the_commit_leaves_the_old_database_and_drops_the_copy(
    tmp_path: Path,
) -> None:
    db = filled(tmp_path / "db", OLD)
    rekey.prepare(db, OLD, NEW)
    # the key file never took NEW: the next writer, holding OLD, throws the copy away
    assert not rekey.settle(db, OLD)
    assert not rekey.pending(db).exists()
    assert texts(db, OLD) == EXPECTED


def test_a_crash_after_the_commit_is_finished_by_the_next_writer(tmp_path: Path) -> None:
    db = filled(tmp_path / "db", OLD)
    rekey.prepare(db, OLD, NEW)
    # the key file holds NEW now; the copy has not replaced the original yet
    assert rekey.settle(db, NEW)
    assert texts(db, NEW) == EXPECTED


def test_a_half_written_copy_is_never_taken(tmp_path: Path) -> None:
    db = filled(tmp_path / "db", None)
    rekey.prepare(db, None, NEW)
    copy = rekey.pending(db)
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])  # a crash mid-export
    assert not rekey.settle(db, NEW)
    assert texts(db, None) == EXPECTED


def test_a_failure_while_preparing_leaves_the_original_and_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = filled(tmp_path / "db", OLD)
    calls = []

    def counts_then_differ(store: Store) -> dict[str, int]:
        calls.append(store.path)
        return {"messages": len(calls)}  # the copy "differs" from the original

    monkeypatch.setattr(rekey, "_counts", counts_then_differ)
    with pytest.raises(StorageError, match="does not match"):
        rekey.prepare(db, OLD, NEW)
    assert not rekey.pending(db).exists()
    monkeypatch.undo()
    assert texts(db, OLD) == EXPECTED


def test_the_copy_and_the_database_after_it_are_owner_only(tmp_path: Path) -> None:
    db = filled(tmp_path / "db", OLD)
    rekey.prepare(db, OLD, None)  # on its way to the clear: the copy is plaintext
    assert rekey.pending(db).stat().st_mode & 0o777 == 0o600
    rekey.settle(db, None)
    assert db.stat().st_mode & 0o777 == 0o600
