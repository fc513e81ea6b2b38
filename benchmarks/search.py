"""Issue 22: full-text search over a large history (SQLite FTS5, chat/search.py).

Fills a fresh home database with N messages (1,000,000; 100,000 with
--quick) straight in SQL — a recursive CTE across 50 conversations, indexed
in one FTS5 'rebuild' (the same index the chat's triggers keep row by row,
made four times as fast) — then times
:func:`chat.search.search` (default limit 20) for four kinds of query: a rare
word (about 10 matches), a word in about 1 message in 5,000, two such words
together, and a word in every message (the worst case: ranked among the
newest RANK_WINDOW matches). Each is the median of REPEATS runs over
different words.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Row
from chat import search
from chat.tables import MIGRATIONS
from mesh.storage.store import Store

REPEATS = 30
TARGET_MS = 50.0

FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status, stored_at, epoch, idx)
SELECT printf('%032x', i), 'conv' || (i % 50), 'author' || (i % 7),
       'about w' || abs(random() % 5000) || ' and w' || abs(random() % 5000)
       || ' with everyone and r' || abs(random() % (:n / 10)),
       1700000000000 + i, i, 'received', 0, 0, i
FROM n
"""


def fill(store: Store, count: int, sql: str = FILL, **params: str) -> float:
    """Store `count` messages (by `sql`, given `n` and `params`); return how long it took (s)."""
    t0 = time.perf_counter()
    trigger = store.query(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_insert'"
    )[0]["sql"]
    with store.atomic():
        store.execute("DROP TRIGGER messages_fts_insert")
        store.execute(sql, {"n": count, **params})
        store.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        store.execute(trigger)
    return time.perf_counter() - t0


def timed(store: Store, queries: list[str]) -> tuple[float, float]:
    """(median, max) milliseconds of search() over `queries`."""
    times = []
    for query in queries:
        t0 = time.perf_counter()
        search.search(store, query)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    count = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="mn-search-") as tmp:
        store = Store(Path(tmp) / "meshnotes.db")
        store.migrate_component("chat", MIGRATIONS)
        fill_s = fill(store, count)
        size_mb = (Path(tmp) / "meshnotes.db").stat().st_size / 1e6
        kinds = {
            "rare word (~10 matches)": [f"r{i * 97}" for i in range(REPEATS)],
            "word in 1 of 5,000": [f"w{i * 131}" for i in range(REPEATS)],
            "two words (AND)": [f"w{i} w{i + 1}" for i in range(REPEATS)],
            "word in every message": ["everyone"] * REPEATS,
        }
        data: dict[str, Any] = {"messages": count, "fill_s": fill_s, "db_mb": size_mb}
        rows = []
        for name, queries in kinds.items():
            timed(store, queries[:3])  # warm the page cache
            median, worst = timed(store, queries)
            data[name] = {"median_ms": median, "max_ms": worst}
            rows.append(
                Row(
                    f"search: {name}, {count:,} messages",
                    median,
                    "ms",
                    target=f"< {TARGET_MS:g} ms",
                    passed=median < TARGET_MS,
                    notes=f"max {worst:.1f} ms over {REPEATS} queries"
                    + (
                        f"; {count:,} messages stored in {fill_s:.1f} s, database {size_mb:.0f} MB"
                        if name.startswith("rare")
                        else ""
                    ),
                    extra=data[name],
                )
            )
        store.close()
    return rows, data
