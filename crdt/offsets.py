"""Python string offsets to the UTF-8 byte offsets pycrdt's Text uses.

pycrdt counts Text positions in UTF-8 bytes; people and editors count
characters. :class:`Utf8Offsets` mirrors a text as chunks that know their
byte lengths, so converting an offset costs one pass over chunk lengths and
one encode of part of a chunk, not an encode of the whole prefix. While the
text is all ASCII (the common case) the two offsets are equal and conversion
is free.
"""

from __future__ import annotations

CHUNK = 1024


def _split(text: str) -> list[str]:
    """`text` in near-equal pieces of at most CHUNK characters.

    Equal pieces, not CHUNK-sized ones and a remainder: typing into a full
    chunk would otherwise split off a one-character chunk per keystroke, and
    the chunk list (walked on every conversion) would grow with every edit.
    """
    if len(text) <= CHUNK:
        return [text]
    count = -(-len(text) // CHUNK)
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


class Utf8Offsets:
    """A chunked mirror of a text, for character -> byte offset conversion."""

    def __init__(self, text: str = "") -> None:
        self._chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
        self._bytes = [len(c.encode("utf-8")) for c in self._chunks]
        self._chars = [len(c) for c in self._chunks]
        self._non_ascii = len(text.encode("utf-8")) - len(text)

    def __len__(self) -> int:
        return sum(self._chars)

    @property
    def text(self) -> str:
        return "".join(self._chunks)

    def _locate(self, index: int) -> tuple[int, int, int]:
        """(chunk number, offset inside it, bytes before the chunk) of a character index."""
        if index < 0:  # a negative offset would count from a chunk's end
            raise IndexError("negative offset")
        before_bytes = 0
        for n, chars in enumerate(self._chars):
            if index <= chars:
                return n, index, before_bytes
            index -= chars
            before_bytes += self._bytes[n]
        raise IndexError("offset beyond the end of the text")

    def to_bytes(self, index: int) -> int:
        """The UTF-8 byte offset of character `index` (0 <= index <= len)."""
        if self._non_ascii == 0:
            if not 0 <= index <= len(self):
                raise IndexError("offset beyond the end of the text")
            return index
        n, offset, before = self._locate(index)
        return before + len(self._chunks[n][:offset].encode("utf-8"))

    def insert(self, index: int, text: str) -> None:
        n, offset, _ = self._locate(index)
        chunk = self._chunks[n]
        pieces = _split(chunk[:offset] + text + chunk[offset:])
        self._chunks[n : n + 1] = pieces
        self._bytes[n : n + 1] = [len(p.encode("utf-8")) for p in pieces]
        self._chars[n : n + 1] = [len(p) for p in pieces]
        self._non_ascii += len(text.encode("utf-8")) - len(text)

    def delete(self, index: int, length: int) -> str:
        """Delete `length` characters at `index`; return them."""
        if index < 0 or length < 0 or index + length > len(self):  # check before changing anything
            raise IndexError("deletion beyond the end of the text")
        removed = []
        while length > 0:
            n, offset, _ = self._locate(index)
            if offset == self._chars[n]:  # at a chunk's end: the text goes on in the next one
                n, offset = n + 1, 0
                if n >= len(self._chunks):
                    raise IndexError("deletion beyond the end of the text")
            chunk = self._chunks[n]
            take = chunk[offset : offset + length]
            rest = chunk[:offset] + chunk[offset + len(take) :]
            removed.append(take)
            length -= len(take)
            if rest or len(self._chunks) == 1:
                self._chunks[n], self._chars[n] = rest, len(rest)
                self._bytes[n] = len(rest.encode("utf-8"))
            else:
                del self._chunks[n], self._chars[n], self._bytes[n]
        text = "".join(removed)
        self._non_ascii -= len(text.encode("utf-8")) - len(text)
        return text
