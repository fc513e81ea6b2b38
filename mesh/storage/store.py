"""The local database: one SQLite file per home (WAL), schema versioned with migrations.

Everything a peer must not forget lives here: contacts, conversations and
their membership events, sender-key chains, messages, the outbox of messages
awaiting receipts, and the mailbox it keeps for others. Writes that the user
sees as done (a message shown as sent or received) commit before anything is
acknowledged.

With a store key (the home has a passphrase: mesh/wire/identity.py seals the
key) the whole file is encrypted with SQLCipher 4 — every page of the database,
its WAL and its journals, so also every index, including full-text ones — under
that raw 256-bit key (``PRAGMA key = "x'…'"``, first on every connection; no
PBKDF2 inside SQLCipher: the key is already random, stretched passphrases are
the key file's business). Without one it is a plain SQLite file, opened with the
standard library as before. mesh/storage/rekey.py moves a database between keys.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mesh.errors import StorageError

if TYPE_CHECKING:
    import sqlite_utils


@functools.cache
def _sqlite_utils() -> Any:
    """sqlite-utils, imported for the first store that may write: a read-only store (a read
    verb's: ``history``) does without its 60 ms of imports (:class:`_Reading`).

    sqlite-utils imports numpy when it can, to store numpy values, which this project never
    does; numpy would add 12 MB to every node's memory (a relay's RSS is a target). So it
    imports without numpy, unless the process already has numpy loaded. (The layers above
    import sqlite-utils for their types only.)"""
    without_numpy = "numpy" not in sys.modules and "sqlite_utils" not in sys.modules
    if without_numpy:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` fail
    try:
        import sqlite_utils
    finally:
        if without_numpy:
            del sys.modules["numpy"]
    return sqlite_utils


#: what a failing statement raises, from either driver (SQLCipher's join once it is loaded;
#: read it as ``store.DB_ERRORS`` from other modules: it is rebound then)
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
#: every error of either driver (as DB_ERRORS)
DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)


def _sqlcipher() -> Any:
    """SQLCipher's DB-API module, imported when the first encrypted store is opened: a node
    without a passphrase does not hold its 5 MB."""
    global DB_ERRORS, DRIVER_ERRORS
    from sqlcipher3 import dbapi2

    if dbapi2.DatabaseError not in DB_ERRORS:
        DB_ERRORS = (sqlite3.DatabaseError, dbapi2.DatabaseError)
        DRIVER_ERRORS = (sqlite3.Error, dbapi2.Error)
    return dbapi2


SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE contacts (
    peer_id TEXT PRIMARY KEY, name TEXT, verified INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL
);
CREATE UNIQUE INDEX contacts_name ON contacts(name) WHERE name IS NOT NULL;
CREATE TABLE conversations (
    conv_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, peer_id TEXT,
    state TEXT NOT NULL, epoch INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
    invited_by TEXT
);
CREATE TABLE room_events (
    event_id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, author TEXT NOT NULL, kind TEXT NOT NULL,
    target TEXT, ts INTEGER NOT NULL, signed BLOB NOT NULL
);
CREATE INDEX room_events_conv ON room_events(conv_id, ts, event_id);
CREATE TABLE chains (
    conv_id TEXT NOT NULL, epoch INTEGER NOT NULL, peer_id TEXT NOT NULL,
    chain_key BLOB NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (conv_id, epoch, peer_id)
);
CREATE TABLE skipped_keys (
    conv_id TEXT NOT NULL, epoch INTEGER NOT NULL, peer_id TEXT NOT NULL, idx INTEGER NOT NULL,
    message_key BLOB NOT NULL, PRIMARY KEY (conv_id, epoch, peer_id, idx)
);
CREATE TABLE key_acks (
    conv_id TEXT NOT NULL, epoch INTEGER NOT NULL, peer_id TEXT NOT NULL,
    PRIMARY KEY (conv_id, epoch, peer_id)
);
CREATE TABLE messages (
    msg_id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL, stored_at REAL NOT NULL,
    epoch INTEGER NOT NULL, idx INTEGER NOT NULL
);
CREATE INDEX messages_order ON messages(conv_id, ts, author, seq);
CREATE UNIQUE INDEX messages_key ON messages(conv_id, author, epoch, idx);
CREATE TABLE recipients (
    msg_id TEXT NOT NULL, peer_id TEXT NOT NULL, delivered_at REAL,
    PRIMARY KEY (msg_id, peer_id)
);
CREATE TABLE outbox (
    item_id TEXT PRIMARY KEY, msg_id TEXT, conv_id TEXT, epoch INTEGER, dest TEXT NOT NULL,
    type INTEGER NOT NULL,
    payload BLOB NOT NULL, tries INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX outbox_next ON outbox(next_try);
CREATE TABLE outbox_envelopes (
    env_id TEXT PRIMARY KEY, item_id TEXT NOT NULL
);
CREATE TABLE mailbox (
    env_id TEXT PRIMARY KEY, dest TEXT NOT NULL, envelope BLOB NOT NULL,
    stored_at REAL NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX mailbox_dest ON mailbox(dest, stored_at);
CREATE TABLE pending (
    env_id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, envelope BLOB NOT NULL,
    received_at REAL NOT NULL
);
"""

SCHEMA_V2 = """
CREATE TABLE room_log (
    room_id TEXT NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL, env_id TEXT NOT NULL,
    envelope BLOB NOT NULL, stored_at REAL NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (room_id, author, seq)
);
CREATE INDEX room_log_age ON room_log(room_id, stored_at);
CREATE TABLE doc_keys (
    conv_id TEXT NOT NULL, epoch INTEGER NOT NULL, key BLOB NOT NULL,
    PRIMARY KEY (conv_id, epoch)
);
"""

SCHEMA_V3 = """
CREATE INDEX mailbox_age ON mailbox(stored_at);
"""

# mail for peers who are not this node's contacts shares the stranger pool, fairly per author
SCHEMA_V4 = """
ALTER TABLE mailbox ADD COLUMN author TEXT;
ALTER TABLE mailbox ADD COLUMN stranger INTEGER NOT NULL DEFAULT 0;
CREATE INDEX mailbox_stranger ON mailbox(stranger, author, stored_at);
CREATE INDEX mailbox_stranger_age ON mailbox(stranger, stored_at);
"""

# sender keys move on (chat/senderkey.py): where and when our own chain was last drawn
SCHEMA_V5 = """
ALTER TABLE chains ADD COLUMN since_idx INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chains ADD COLUMN since_ts REAL;
"""


@functools.cache
def _statements(script: str) -> tuple[str, ...]:
    """The statements of a schema script, split once.

    Inside a transaction, sqlite-utils' executescript splits its script on every
    call, testing each growing prefix character by character: most of the cost of
    opening a fresh store (a simulated mesh opens a thousand).
    """
    out: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):  # a trigger body holds inner semicolons
            if current.strip() != ";":
                out.append(current.strip())
            current = ""
    return tuple(out)


def run_script(db: sqlite_utils.Database, script: str) -> None:
    """Run a schema script statement by statement, within the caller's transaction."""
    for statement in _statements(script):
        db.execute(statement)


#: migrations[i] takes the schema from version i to i + 1
MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, SCHEMA_V1),
    lambda db: run_script(db, SCHEMA_V2),
    lambda db: run_script(db, SCHEMA_V3),
    lambda db: run_script(db, SCHEMA_V4),
    lambda db: run_script(db, SCHEMA_V5),
]
SCHEMA_VERSION = len(MIGRATIONS)


#: WAL pages (4 KiB each) written between two automatic checkpoints
WAL_CHECKPOINT_PAGES = 1000

#: how long a read-only reader waits for a writer's lock (WAL readers rarely wait at all)
READ_BUSY_TIMEOUT = 10.0


class Store:
    """The home's database. Use :meth:`atomic` for writes that must commit together.

    With `readonly`, the file is opened read-only (another process, the node, may
    be writing it): no migrations, no tables made, any write fails; a database of
    another schema version is refused with one line (:meth:`open_readonly`).
    """

    def __init__(
        self,
        path: Path | None,
        readonly: bool = False,
        key: bytes | None = None,
        cipher: bool = False,
    ) -> None:
        """`key`: the store key of an encrypted database (None: a plain one). `cipher`
        opens a plain database with SQLCipher's driver too (to export it encrypted)."""
        self.path = path
        self.readonly = readonly and path is not None
        self.encrypted = key is not None
        conn: Any = None
        try:
            if path is None:
                conn = sqlite3.connect(":memory:", isolation_level=None)
            elif self.readonly:
                # WAL lets this reader see the last commit while a node writes on; the busy
                # timeout covers the moments a checkpoint or recovery holds the lock
                uri = f"{path.absolute().as_uri()}?mode=ro"
                conn = _connect(uri, key, cipher, uri=True, timeout=READ_BUSY_TIMEOUT)
                conn.execute("PRAGMA query_only=ON")
                self.db = cast("sqlite_utils.Database", _Reading(conn))
                self._check_version()
                return
            else:
                conn = _connect(str(path), key, cipher, timeout=10)
                with contextlib.suppress(OSError):
                    path.chmod(0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a committed transaction survives a crash of the process (kill -9
            # included); only an OS crash or power cut may lose the last few commits. FULL
            # would fsync every commit and cap a relay's mailbox near a hundred writes a second.
            conn.execute("PRAGMA synchronous=NORMAL")
            # a checkpoint (two fsyncs, on the writer's thread: the node's event loop) once
            # the WAL holds WAL_CHECKPOINT_PAGES pages: SQLite's own 1,000 (4 MiB). 8,192
            # saved fsyncs in a long catch-up, but the WAL file keeps its largest size, and
            # a home then holds 32 MiB more on disk (a flood of room ids grew a relay's
            # files by 32.9 MiB, not 4.6: docs/performance.md, abuse rows)
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            conn.execute("PRAGMA foreign_keys=ON")
            self.db = _sqlite_utils().Database(conn)
            self._migrate()
        except DB_ERRORS + (StorageError,) as exc:  # noqa: RUF005 (mypy: a starred tuple)
            if conn is not None:
                conn.close()
            if isinstance(exc, StorageError):
                raise
            if key is not None and "not a database" in str(exc):
                raise StorageError(
                    f"the database {path} does not open with this passphrase's key "
                    "(wrong passphrase, or the file is damaged)"
                ) from exc
            raise StorageError(f"cannot open the database {path}: {exc}") from exc

    @classmethod
    def open_readonly(cls, path: Path, key: bytes | None = None) -> Store:
        """The database at `path` for reading only; a home without one yet (nothing stored)
        reads as an empty database, made in memory, never on disk."""
        if not path.exists():
            return cls(None)
        return cls(path, readonly=True, key=key)

    def _check_version(self) -> None:
        """A reader's check: the schema must be this program's (a reader never migrates)."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"the database {self.path} has schema version {version}, this program reads "
                f"{SCHEMA_VERSION}; "
                + (
                    "upgrade meshnotes"
                    if version > SCHEMA_VERSION
                    else "start its node once (meshnotes run) to bring it up to date"
                )
            )

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"the database {self.path} has schema version {version}, newer than this "
                f"program's {SCHEMA_VERSION}; upgrade meshnotes"
            )
        for step in range(version, SCHEMA_VERSION):
            with self.db.atomic():
                MIGRATIONS[step](self.db)
                self.db.execute(f"PRAGMA user_version = {step + 1}")

    def migrate_component(
        self, name: str, migrations: list[Callable[[sqlite_utils.Database], object]]
    ) -> None:
        """Bring the tables of a layer above (such as notes) to their latest version.

        Each component keeps its own version in `meta`, so layers evolve their
        tables independently of the mesh's schema.
        """
        key = f"schema:{name}"
        version = int(self.get_meta(key, "0") or 0)
        if self.readonly and version != len(migrations):
            raise StorageError(
                f"the database {self.path} holds {name} tables of version {version}, this "
                f"program reads {len(migrations)}; "
                + (
                    "upgrade meshnotes"
                    if version > len(migrations)
                    else "start its node once (meshnotes run) to bring them up to date"
                )
            )
        if version > len(migrations):
            raise StorageError(
                f"the database {self.path} holds {name} tables of version {version}, newer than "
                f"this program's {len(migrations)}; upgrade meshnotes"
            )
        for step in range(version, len(migrations)):
            with self.atomic():
                migrations[step](self.db)
                self.set_meta(key, str(step + 1))

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A transaction: everything inside commits together or not at all.

        Inside a transaction, a savepoint. Its name is always the same (SQLite releases
        the innermost savepoint of a name first), so that SQLite reuses the prepared
        statements: sqlite-utils names each one anew, which made a savepoint cost about
        as much as the insert it guards when a burst of messages takes one each."""
        conn = self.db.conn
        try:
            if not conn.in_transaction:
                with self.db.atomic() as db:
                    yield db
                return
            conn.execute("SAVEPOINT mn_atomic")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:  # an error may have ended the transaction already
                    conn.execute("ROLLBACK TO SAVEPOINT mn_atomic")
                    conn.execute("RELEASE SAVEPOINT mn_atomic")
                raise
            conn.execute("RELEASE SAVEPOINT mn_atomic")
        except DB_ERRORS as exc:
            raise StorageError(f"database error: {exc}") from exc

    def has_table(self, name: str) -> bool:
        """Whether the database has table `name` (a reader's database may predate it)."""
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def query(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """The rows of one SELECT, as dicts.

        Straight on the connection: sqlite-utils' ``query`` wraps each statement in a
        savepoint of its own (three statements for one), which made up most of the
        SQL a node runs per received message."""
        try:
            cursor = self.db.conn.execute(sql, params)
            if cursor.description is None:
                return []
            keys = [column[0] for column in cursor.description]
            if len(set(keys)) < len(keys):  # a join naming a column twice: key, key_2
                from sqlite_utils.utils import dedupe_keys

                keys = dedupe_keys(keys)
            return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
        except DB_ERRORS as exc:
            raise StorageError(f"database error: {exc}") from exc

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        try:
            return int(self.db.execute(sql, params).rowcount)
        except DB_ERRORS as exc:
            raise StorageError(f"database error: {exc}") from exc

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """Run one statement for each of `rows` (prepared once); return the rows it changed
        (not counting what triggers did)."""
        try:
            return int(self.db.conn.executemany(sql, rows).rowcount)
        except DB_ERRORS as exc:
            raise StorageError(f"database error: {exc}") from exc

    def changes(self) -> int:
        """Rows changed on this connection so far, by any statement or trigger: whether a
        step wrote anything is told by this number moving."""
        return int(self.db.conn.total_changes)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_counter(self, key: str) -> int:
        """Increment and return a persistent counter (inside the caller's transaction if any)."""
        value = int(self.get_meta(key, "0") or 0) + 1
        self.set_meta(key, str(value))
        return value

    def checkpoint(self) -> None:
        """Copy the WAL into the database and empty it (best effort: a reader may hold it).

        Called after a delete, so that no page of the WAL keeps what was deleted."""
        with contextlib.suppress(*DB_ERRORS):  # sqlite3's or SQLCipher's, whichever opened it
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_ok(self) -> bool:
        return bool(self.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok")

    def close(self) -> None:
        with contextlib.suppress(*DRIVER_ERRORS):
            self.db.conn.close()


class _Reading:
    """What a read-only store calls of sqlite-utils' Database (``execute``, ``query``,
    ``conn``), over the connection itself: reads need no more, and start sooner."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def query(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        keys = [d[0] for d in cursor.description or ()]
        return (dict(zip(keys, row, strict=True)) for row in cursor)


def _connect(
    target: str, key: bytes | None, cipher: bool, uri: bool = False, timeout: float = 10
) -> Any:
    """A connection to `target`: SQLCipher's, keyed before anything else, or else the standard
    library's. A wrong key shows at the first read ("file is not a database")."""
    if key is None and not cipher:
        return sqlite3.connect(target, uri=uri, isolation_level=None, timeout=timeout)
    conn = _sqlcipher().connect(target, uri=uri, isolation_level=None, timeout=timeout)
    conn.execute("PRAGMA cipher_log_level = NONE")  # its own stderr lines: ours is one line
    if key is not None:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    conn.execute("SELECT count(*) FROM sqlite_master")
    return conn
