"""Tests for mesh.storage.store: schema versions, WAL, durability, transactions, errors."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from mesh.errors import StorageError
from mesh.storage.store import SCHEMA_VERSION, Store, run_script


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home" / "meshnotes.db"


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_new_database_gets_the_current_schema_in_wal_mode(db_path: Path) -> None:
    store = Store(db_path)
    try:
        assert store.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
        assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        tables = {r["name"] for r in store.query("SELECT name FROM sqlite_master")}
        assert {"meta", "contacts", "chains", "outbox", "mailbox"} <= tables
        assert store.integrity_ok()
    finally:
        store.close()
    assert user_version(db_path) == SCHEMA_VERSION


def test_an_in_memory_store_gets_the_schema_too() -> None:
    store = Store(None)
    assert store.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
    assert store.get_meta("missing", "default") == "default"
    store.close()


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    store = Store(db_path)
    store.set_meta("greeting", "hello")
    store.close()
    reopened = Store(db_path)
    try:
        assert reopened.get_meta("greeting") == "hello"
        assert reopened.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
    finally:
        reopened.close()


def test_a_database_from_a_newer_version_is_refused_clearly(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError) as info:
        Store(db_path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "newer" in message and "upgrade meshnotes" in message
    assert str(db_path) in message
    # and refusing it changed nothing
    assert user_version(db_path) == SCHEMA_VERSION + 1


def test_a_corrupt_file_raises_storage_error_not_sqlite3_errors(db_path: Path) -> None:
    db_path.write_bytes(b"this is not an SQLite database\n" * 200)
    with pytest.raises(StorageError, match="cannot open the database") as info:
        Store(db_path)
    assert str(db_path) in str(info.value)
    assert not isinstance(info.value, sqlite3.Error)


def test_a_path_that_cannot_be_opened_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open the database"):
        Store(tmp_path / "no such directory" / "meshnotes.db")


def test_atomic_rolls_back_everything_on_an_exception() -> None:
    store = Store(None)
    store.set_meta("kept", "1")
    with pytest.raises(RuntimeError, match="boom"), store.atomic():
        store.set_meta("kept", "2")
        store.set_meta("lost", "x")
        raise RuntimeError("boom")
    assert store.get_meta("kept") == "1"
    assert store.get_meta("lost") is None


def test_atomic_commits_when_the_block_completes() -> None:
    store = Store(None)
    with store.atomic():
        store.set_meta("a", "1")
        store.set_meta("b", "2")
    assert (store.get_meta("a"), store.get_meta("b")) == ("1", "2")


def test_nested_atomic_blocks_roll_back_only_their_own_writes() -> None:
    # savepoints share one name (so SQLite prepares them once): each undoes only its own
    store = Store(None)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    with store.atomic():
        store.set_meta("outer", "1")
        with store.atomic():
            store.set_meta("middle", "1")
            with pytest.raises(RuntimeError), store.atomic():
                store.set_meta("inner", "1")
                raise RuntimeError("refused")
            with store.atomic():
                store.set_meta("second", "1")
        with pytest.raises(RuntimeError), store.atomic():
            store.set_meta("lost", "1")
            with store.atomic():
                store.set_meta("lost too", "1")
            raise RuntimeError("refused")
    store.db.conn.set_trace_callback(None)
    kept = {
        k: store.get_meta(k) for k in ("outer", "middle", "inner", "second", "lost", "lost too")
    }
    assert kept == {
        "outer": "1",
        "middle": "1",
        "inner": None,
        "second": "1",
        "lost": None,
        "lost too": None,
    }
    assert {s for s in statements if "SAVEPOINT" in s} == {
        "SAVEPOINT mn_atomic",
        "RELEASE SAVEPOINT mn_atomic",
        "ROLLBACK TO SAVEPOINT mn_atomic",
    }


def test_a_database_error_inside_atomic_rolls_back_as_storage_error() -> None:
    store = Store(None)
    with pytest.raises(StorageError, match="database error"), store.atomic():
        store.set_meta("lost", "x")
        store.execute("INSERT INTO no_such_table VALUES (1)")
    assert store.get_meta("lost") is None


def test_query_and_execute_translate_sqlite_errors() -> None:
    store = Store(None)
    with pytest.raises(StorageError, match="database error"):
        store.query("SELECT * FROM no_such_table")
    with pytest.raises(StorageError, match="database error"):
        store.execute("DELETE FROM no_such_table")


def test_a_query_runs_one_statement_and_returns_its_rows_as_dicts() -> None:
    store = Store(None)
    store.set_meta("a", "1")
    store.set_meta("b", "2")
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    rows = store.query("SELECT key, value FROM meta WHERE key IN (?, ?) ORDER BY key", ("a", "b"))
    joined = store.query("SELECT m.key, n.key FROM meta m JOIN meta n ON n.key = m.key")
    store.db.conn.set_trace_callback(None)
    assert rows == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert len(statements) == 2  # one statement each: no savepoint around a query
    # a column named twice keeps both values, the second one renamed (as sqlite-utils does)
    assert {"key", "key_2"} <= set(joined[0])


def test_execute_returns_the_number_of_changed_rows() -> None:
    store = Store(None)
    store.set_meta("a", "1")
    store.set_meta("b", "1")
    assert store.execute("UPDATE meta SET value = '2'") == 2
    assert store.execute("DELETE FROM meta WHERE key = 'none'") == 0


def test_next_counter_counts_up_and_persists(db_path: Path) -> None:
    store = Store(db_path)
    assert [store.next_counter("seq"), store.next_counter("seq")] == [1, 2]
    assert store.next_counter("other") == 1
    store.close()
    reopened = Store(db_path)
    try:
        assert reopened.next_counter("seq") == 3
    finally:
        reopened.close()


def test_next_counter_inside_a_rolled_back_transaction_is_undone() -> None:
    store = Store(None)
    store.next_counter("seq")
    with pytest.raises(RuntimeError), store.atomic():
        assert store.next_counter("seq") == 2
        raise RuntimeError
    assert store.next_counter("seq") == 2


def test_the_database_files_are_owner_only(db_path: Path) -> None:
    store = Store(db_path)
    store.set_meta("a", "1")  # makes sure the -wal and -shm files exist
    try:
        files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
        assert db_path in files
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        store.close()


def test_a_schema_script_runs_whole_statements_inside_the_callers_transaction() -> None:
    store = Store(None)
    script = """
        CREATE TABLE a (x INTEGER);
        CREATE TABLE log (x INTEGER);
        CREATE TRIGGER a_log AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.x); END;
    """
    with pytest.raises(StorageError), store.atomic():
        run_script(store.db, script)
        store.execute("INSERT INTO a VALUES (1)")
        raise sqlite3.OperationalError("fails after the script")
    # rolled back with the transaction: sqlite3's own executescript would have committed first
    assert store.query("SELECT name FROM sqlite_master WHERE name IN ('a', 'log')") == []
    with store.atomic():
        run_script(store.db, script)  # the trigger body's semicolons stay inside it
        store.execute("INSERT INTO a VALUES (7)")
    assert store.query("SELECT x FROM log") == [{"x": 7}]


def test_a_readonly_store_reads_what_a_writer_commits_and_never_writes(db_path: Path) -> None:
    writer = Store(db_path)
    writer.set_meta("a", "1")
    reader = Store.open_readonly(db_path)
    try:
        assert reader.get_meta("a") == "1"
        with writer.atomic():
            writer.set_meta("b", "2")
            assert reader.get_meta("b") is None  # not committed yet; WAL: no lock wait
        assert reader.get_meta("b") == "2"
        with pytest.raises(StorageError, match="readonly"):
            reader.set_meta("c", "3")
    finally:
        reader.close()
        writer.close()


def test_a_readonly_store_of_a_missing_file_is_empty_and_makes_no_file(db_path: Path) -> None:
    reader = Store.open_readonly(db_path)
    assert reader.query("SELECT * FROM contacts") == []
    reader.close()
    assert not db_path.exists()


def test_a_readonly_store_refuses_another_schema_version_without_migrating(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.close()
    with pytest.raises(StorageError, match="start its node once"):
        Store.open_readonly(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    store = Store(db_path)
    try:
        store.set_meta("schema:notes", "9")
    finally:
        store.close()
    reader = Store.open_readonly(db_path)
    try:
        with pytest.raises(StorageError, match="upgrade meshnotes"):
            reader.migrate_component("notes", [lambda db: None])
    finally:
        reader.close()
