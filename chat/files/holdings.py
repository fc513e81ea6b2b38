"""What this node keeps of attachments: their descriptors, chunk records, and sealed bytes.

The store holds one row per known file (its descriptor, conversation,
state) and one per chunk kept (its leaf hash); the sealed bytes live beside
the database in ``files/``: ``ID.part`` while a fetch runs (chunk ``i`` at
offset ``i * (CHUNK_SIZE + MAC_SIZE)``, written before its row commits, so a
row always has its bytes behind it, even after kill -9), renamed to
``ID.sealed`` once every leaf checks against the root. Nothing here is ever
plaintext: a file is opened only when written out to where its user asks
(:meth:`Holdings.export`).

States: ``offered`` (announced, not fetched), ``fetching``, ``complete``
(sealed copy kept: this node serves it), ``over_budget`` (it did not fit),
``evicted`` (dropped for room). The byte budget counts every sealed file
kept, part or whole, at its full sealed size; past it, complete copies of
files this node did not send go first, those of conversations it left
before the others, oldest first.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chat.files.format import (
    CHUNK_SIZE,
    HASH_SIZE,
    MAC_SIZE,
    Descriptor,
    HashTree,
    chunk_count,
    leaf,
    seal_chunk,
    sealed_size,
)
from mesh.errors import StorageError, UsageError
from mesh.storage.store import Store, run_script

if TYPE_CHECKING:
    import sqlite_utils

SLOT = CHUNK_SIZE + MAC_SIZE
#: hash trees kept in memory for serving
MAX_TREES = 16
#: chunk rows committed in one transaction, at most: one commit per chunk cost the fetcher as
#: much as hashing the chunk. A crash loses the rows not yet committed (never a row without its
#: bytes), and their chunks are fetched again.
ROW_BATCH = 16

FILES_V1 = """
CREATE TABLE files (
    file_id TEXT PRIMARY KEY, conv_id TEXT NOT NULL, msg_id TEXT, author TEXT NOT NULL,
    name TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT NOT NULL, root BLOB NOT NULL,
    key BLOB NOT NULL, own INTEGER NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE file_chunks (
    file_id TEXT NOT NULL, idx INTEGER NOT NULL, leaf BLOB NOT NULL, PRIMARY KEY (file_id, idx)
);
"""

#: a fetched chunk keeps the proof it came with, so a node halfway through a fetch can
#: serve the chunks it has (it lacks the leaves to build their proofs itself)
FILES_V2 = "ALTER TABLE file_chunks ADD COLUMN proof BLOB;"

MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, FILES_V1),
    lambda db: run_script(db, FILES_V2),
]


def sealed_total(size: int) -> int:
    """The bytes a file of `size` takes kept sealed."""
    return size + chunk_count(size) * MAC_SIZE


def seal_file(
    source: Path, key: bytes, dest: Path, sealed_so_far: Callable[[int], None] | None = None
) -> tuple[int, list[bytes]]:
    """Seal `source` chunk by chunk into `dest`; its size and leaves (blocking: a thread's job).

    `sealed_so_far(bytes)` is called after each chunk (in the sealing thread).
    """
    leaves: list[bytes] = []
    size = 0
    try:
        with source.open("rb") as src, dest.open("wb") as out:
            index = 0
            while True:
                plain = src.read(CHUNK_SIZE)
                if not plain and index:
                    break
                sealed = seal_chunk(key, index, plain)
                out.write(sealed)
                leaves.append(leaf(sealed))
                size += len(plain)
                index += 1
                if sealed_so_far is not None:
                    sealed_so_far(size)
                if len(plain) < CHUNK_SIZE:
                    break
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return size, leaves


class Holdings:
    """The files this node knows, in `store`, with their sealed bytes under `directory`."""

    def __init__(self, store: Store, directory: Path, budget: int) -> None:
        self.store = store
        self.directory = directory
        self.budget = budget
        store.migrate_component("files", MIGRATIONS)
        self._trees: OrderedDict[str, HashTree] = OrderedDict()
        self._fds: dict[str, int] = {}
        #: chunk rows written but not yet committed: (file_id, idx, leaf, proof)
        self._pending: list[tuple[str, int, bytes, bytes]] = []

    def ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use {self.directory}: {exc.strerror or exc}") from exc

    def part_path(self, file_id: str) -> Path:
        return self.directory / f"{file_id}.part"

    def sealed_path(self, file_id: str) -> Path:
        return self.directory / f"{file_id}.sealed"

    # -- rows ------------------------------------------------------------------------

    def add(
        self,
        descriptor: Descriptor,
        conv_id: str,
        msg_id: str | None,
        author: str,
        own: bool,
        state: str,
        now: float,
    ) -> bool:
        """Record a file (once: a second announcement of the same root changes nothing)."""
        return bool(
            self.store.execute(
                "INSERT OR IGNORE INTO files (file_id, conv_id, msg_id, author, name, size, mime,"
                " root, key, own, state, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    descriptor.file_id,
                    conv_id,
                    msg_id,
                    author,
                    descriptor.name,
                    descriptor.size,
                    descriptor.mime,
                    descriptor.root,
                    descriptor.key,
                    int(own),
                    state,
                    now,
                ),
            )
        )

    def row(self, file_id: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM files WHERE file_id = ?", (file_id,))
        return rows[0] if rows else None

    def resolve(self, text: str) -> dict[str, Any]:
        """The file named by its id or an unambiguous id prefix (UsageError otherwise)."""
        text = text.strip().lower()
        if len(text) < 4:
            raise UsageError("give at least 4 characters of the file id")
        rows = self.store.query(
            "SELECT * FROM files WHERE file_id >= ? AND file_id < ? ORDER BY file_id",
            (text, text + "g"),
        )
        if not rows:
            raise UsageError(f"no file {text!r} known here")
        if len(rows) > 1:
            raise UsageError(f"{text!r} names {len(rows)} files; give more of the id")
        return rows[0]

    def descriptor(self, row: dict[str, Any]) -> Descriptor:
        return Descriptor(row["name"], row["size"], row["mime"], row["root"], row["key"])

    def set_state(self, file_id: str, state: str) -> None:
        self.store.execute("UPDATE files SET state = ? WHERE file_id = ?", (state, file_id))

    def all(self) -> list[dict[str, Any]]:
        """``files list``: every known file, newest first, with the bytes held of it."""
        self.flush()
        rows = self.store.query(
            "SELECT f.file_id, f.name, f.size, f.mime, f.state, f.conv_id, f.msg_id, f.author,"
            " f.own, f.created_at, (SELECT COUNT(*) FROM file_chunks c"
            " WHERE c.file_id = f.file_id) AS held FROM files f ORDER BY f.created_at DESC"
        )
        return [view(row) for row in rows]

    def by_message(self, msg_id: str) -> dict[str, Any] | None:
        """The file a message announced, as :meth:`all` shows it (None: it announced none)."""
        self.flush()
        rows = self.store.query(
            "SELECT f.*, (SELECT COUNT(*) FROM file_chunks c WHERE c.file_id = f.file_id)"
            " AS held FROM files f WHERE f.msg_id = ?",
            (msg_id,),
        )
        return view(rows[0]) if rows else None

    def with_state(self, *states: str) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        return self.store.query(f"SELECT * FROM files WHERE state IN ({marks})", states)

    def held(self, file_id: str) -> set[int]:
        self.flush()
        rows = self.store.query("SELECT idx FROM file_chunks WHERE file_id = ?", (file_id,))
        return {row["idx"] for row in rows}

    def held_bytes(self) -> int:
        """The sealed bytes kept or reserved (parts count at their full size)."""
        rows = self.store.query(
            "SELECT COALESCE(SUM(size), 0) AS b, COUNT(*) AS n FROM files"
            " WHERE state IN ('fetching', 'complete')"
        )
        chunks = self.store.query(
            "SELECT COALESCE(SUM((size + ?) / ?), 0) AS n FROM files"
            " WHERE state IN ('fetching', 'complete')",
            (CHUNK_SIZE - 1, CHUNK_SIZE),
        )
        return int(rows[0]["b"]) + int(chunks[0]["n"]) * MAC_SIZE

    # -- the budget ----------------------------------------------------------------------

    def make_room(self, size: int, member_of: Callable[[str], bool]) -> bool:
        """Evict complete copies of others' files until `size` more sealed bytes fit."""
        need = self.held_bytes() + sealed_total(size) - self.budget
        if need <= 0:
            return True
        rows = self.store.query(
            "SELECT file_id, conv_id, size FROM files WHERE state = 'complete' AND own = 0"
            " ORDER BY created_at"
        )
        rows.sort(key=lambda r: member_of(r["conv_id"]))  # stable: left conversations first
        victims = []
        for row in rows:
            if need <= 0:
                break
            victims.append(row["file_id"])
            need -= sealed_total(row["size"])
        if need > 0:
            return False
        for file_id in victims:
            self.evict(file_id)
        return True

    def evict(self, file_id: str) -> None:
        """Drop the sealed bytes of a file (its row stays: it can be fetched again)."""
        self.flush()
        self.close(file_id)
        self._trees.pop(file_id, None)
        for path in (self.sealed_path(file_id), self.part_path(file_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with self.store.atomic():
            self.store.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
            self.set_state(file_id, "evicted")

    # -- sealed bytes ------------------------------------------------------------------

    def keep_own(self, descriptor: Descriptor, sealed: Path, leaves: list[bytes]) -> None:
        """A file this node sealed: its bytes move into place with every chunk recorded."""
        os.replace(sealed, self.sealed_path(descriptor.file_id))
        with self.store.atomic():
            self.store.db.conn.executemany(
                "INSERT OR IGNORE INTO file_chunks (file_id, idx, leaf) VALUES (?, ?, ?)",
                [(descriptor.file_id, i, h) for i, h in enumerate(leaves)],
            )

    def write_chunk(
        self, file_id: str, index: int, sealed: bytes, digest: bytes, proof: Sequence[bytes]
    ) -> None:
        """Write a checked chunk into the part file, then record it with its proof (committed
        with the next :data:`ROW_BATCH`, or at the next :meth:`flush`)."""
        fd = self._fds.get(file_id)
        try:
            if fd is None:
                fd = self._fds[file_id] = os.open(
                    self.part_path(file_id), os.O_RDWR | os.O_CREAT, 0o600
                )
            os.pwrite(fd, sealed, index * SLOT)
        except OSError as exc:
            raise StorageError(f"cannot write {self.part_path(file_id)}: {exc}") from exc
        self._pending.append((file_id, index, digest, b"".join(proof)))
        if len(self._pending) >= ROW_BATCH:
            self.flush()

    def flush(self) -> None:
        """Commit the chunk rows written since the last flush (their bytes are written)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        with self.store.atomic():
            self.store.db.conn.executemany(
                "INSERT OR IGNORE INTO file_chunks (file_id, idx, leaf, proof) VALUES (?,?,?,?)",
                rows,
            )

    def finish(self, descriptor: Descriptor) -> list[int]:
        """Check the part file against the root; move it into place, or return the bad chunks."""
        self.flush()
        file_id = descriptor.file_id
        self.close(file_id)
        leaves, bad = [], []
        try:
            with self.part_path(file_id).open("rb") as part:
                for index in range(descriptor.chunks):
                    part.seek(index * SLOT)
                    sealed = part.read(sealed_size(descriptor.size, index))
                    leaves.append(leaf(sealed))
        except OSError as exc:
            raise StorageError(f"cannot read {self.part_path(file_id)}: {exc}") from exc
        if HashTree(leaves).root != descriptor.root:
            recorded = {
                row["idx"]: row["leaf"]
                for row in self.store.query(
                    "SELECT idx, leaf FROM file_chunks WHERE file_id = ?", (file_id,)
                )
            }
            bad = [i for i, h in enumerate(leaves) if recorded.get(i) != h] or list(
                range(descriptor.chunks)
            )
            marks = ",".join("?" * len(bad))
            self.store.execute(
                f"DELETE FROM file_chunks WHERE file_id = ? AND idx IN ({marks})", (file_id, *bad)
            )
            return bad
        os.replace(self.part_path(file_id), self.sealed_path(file_id))
        self.set_state(file_id, "complete")
        return []

    def read_chunk(self, descriptor: Descriptor, index: int) -> tuple[bytes, list[bytes]]:
        """A complete file's sealed chunk `index` and its proof."""
        file_id = descriptor.file_id
        tree = self._tree(file_id, descriptor.chunks)
        return _read_slot(self.sealed_path(file_id), descriptor, index), tree.proof(index)

    def read_part_chunk(self, descriptor: Descriptor, index: int) -> tuple[bytes, list[bytes]]:
        """A chunk kept of a file still being fetched, with the proof it came with."""
        self.flush()
        file_id = descriptor.file_id
        rows = self.store.query(
            "SELECT proof FROM file_chunks WHERE file_id = ? AND idx = ?", (file_id, index)
        )
        if not rows or rows[0]["proof"] is None:
            raise StorageError(f"chunk {index} of {file_id} is not kept with its proof")
        proof = rows[0]["proof"]
        sealed = _read_slot(self.part_path(file_id), descriptor, index)
        return sealed, [proof[i : i + HASH_SIZE] for i in range(0, len(proof), HASH_SIZE)]

    def chunks(self, descriptor: Descriptor) -> Iterator[bytes]:
        """A complete file's sealed chunks in order (for writing it out)."""
        with self.sealed_path(descriptor.file_id).open("rb") as sealed_file:
            for index in range(descriptor.chunks):
                sealed_file.seek(index * SLOT)
                yield sealed_file.read(sealed_size(descriptor.size, index))

    def close(self, file_id: str) -> None:
        fd = self._fds.pop(file_id, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        self.flush()
        for file_id in list(self._fds):
            self.close(file_id)

    def _tree(self, file_id: str, chunks: int) -> HashTree:
        tree = self._trees.get(file_id)
        if tree is None:
            rows = self.store.query(
                "SELECT leaf FROM file_chunks WHERE file_id = ? ORDER BY idx", (file_id,)
            )
            if len(rows) != chunks:
                raise StorageError(f"the chunk records of {file_id} are incomplete")
            tree = self._trees[file_id] = HashTree([row["leaf"] for row in rows])
            if len(self._trees) > MAX_TREES:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(file_id)
        return tree


def _read_slot(path: Path, descriptor: Descriptor, index: int) -> bytes:
    """Sealed chunk `index` of a file kept (whole or in part) at `path`."""
    try:
        with path.open("rb") as kept:
            kept.seek(index * SLOT)
            return kept.read(sealed_size(descriptor.size, index))
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def view(row: dict[str, Any]) -> dict[str, Any]:
    """A file as ``files list --json`` shows it."""
    size = int(row["size"])
    held = int(row.get("held") or 0)
    have = size if row["state"] == "complete" else min(size, held * CHUNK_SIZE)
    return {
        "file_id": row["file_id"],
        "name": row["name"],
        "size": size,
        "mime": row["mime"],
        "state": row["state"],
        "have_bytes": have,
        "conv_id": row["conv_id"],
        "msg_id": row["msg_id"],
        "author": row["author"],
        "own": bool(row["own"]),
    }
