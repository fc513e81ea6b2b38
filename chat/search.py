"""Search across all stored history: SQLite FTS5 over the text of the messages shown.

The index (``messages_fts``, :mod:`chat.tables`) holds the terms of every
message and reply as it reads now: an edit re-indexes it, a delete takes it
out. A query is words, each matched as a whole word or, ending in ``*``, as a
prefix; every word must match. No FTS5 syntax reaches SQLite, so no query can
fail to parse.

Ranking: the newest RANK_WINDOW matches are scored with BM25 (k1 = 1.2,
b = 0.75; each query word weighs the same), best first, the newer first among
equals. FTS5's own ``rank`` is not used: it counts, for every query, how many
messages hold each word, a scan of the word's whole posting list (about 45 ms
for a word found in each of a million messages), where reading the newest
matches in rowid order stops after RANK_WINDOW.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from mesh.errors import UsageError
from mesh.storage.store import Store

#: the newest matches a query ranks
RANK_WINDOW = 200
MAX_RESULTS = 1000
WORD = re.compile(r"[\w]+\*?")
#: the tokens of FTS5's unicode61 tokenizer: letters and digits (no underscore)
TOKEN = re.compile(r"[^\W_]+")
K1, B = 1.2, 0.75


def match_expression(query: str) -> str:
    """The FTS5 expression for a user's query: each word a quoted phrase, `*` kept as prefix."""
    parts = [f'"{w.rstrip("*")}"' + ("*" if w.endswith("*") else "") for w in _words(query)]
    return " AND ".join(parts)


def _words(query: str) -> list[str]:
    words = [w for w in WORD.findall(query) if w.rstrip("*")]
    if not words:
        raise UsageError("the search has no words to look for")
    return words


def _fold(text: str) -> str:
    """Case and diacritics folded away, as unicode61 does."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search(
    store: Store, query: str, conv_id: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """[{id, conv, author, text, ts}] best first, at most `limit`, in one conversation or all."""
    if not 1 <= limit <= MAX_RESULTS:
        raise UsageError(f"--limit must be between 1 and {MAX_RESULTS}")
    rows = store.query(
        "SELECT m.msg_id, m.conv_id, m.author, m.text, m.ts FROM messages_fts"
        " JOIN messages m ON m.rowid = messages_fts.rowid WHERE messages_fts MATCH :match"
        + ("" if conv_id is None else " AND m.conv_id = :conv")
        + " ORDER BY messages_fts.rowid DESC LIMIT :window",
        {"match": match_expression(query), "conv": conv_id, "window": max(RANK_WINDOW, limit)},
    )
    ranked = sorted(rows, key=_scorer(query, rows), reverse=True)[:limit]
    return [
        {
            "id": r["msg_id"],
            "conv": r["conv_id"],
            "author": r["author"],
            "text": r["text"],
            "ts": r["ts"],
        }
        for r in ranked
    ]


def _scorer(query: str, rows: list[dict[str, Any]]) -> Any:
    """The sort key of a row: (BM25 score over `rows`, ts)."""
    words = [_fold(w) for w in _words(query)]
    tokens = {r["msg_id"]: TOKEN.findall(_fold(r["text"])) for r in rows}
    average = sum(len(t) for t in tokens.values()) / max(len(tokens), 1) or 1.0

    def key(row: dict[str, Any]) -> tuple[float, int]:
        found = tokens[row["msg_id"]]
        norm = K1 * (1 - B + B * len(found) / average)
        score = 0.0
        for word in words:
            stem = word.rstrip("*")
            if word.endswith("*"):
                tf = sum(1 for t in found if t.startswith(stem))
            else:
                tf = sum(1 for t in found if t == stem)
            score += tf * (K1 + 1) / (tf + norm)
        return score, row["ts"]

    return key
