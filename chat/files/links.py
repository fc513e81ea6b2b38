"""Links to attachments from notes: ``[NAME](meshnotes:file/FILE_ID)``.

A note links a file with an ordinary Markdown link whose target is
``meshnotes:file/`` and the file's id (its hash-tree root, in hex). The link
carries no key: it opens for a reader who was sent the file (a member of the
conversation it was announced in), and tells anyone else that the file is
not theirs to open. A prefix of the id works as it does in ``files get``.
Pure functions: the note view and ``files link`` use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "meshnotes:file/"

#: a file id, or the at least 4 hex characters of a prefix
_ID = r"[0-9a-fA-F]{4,64}"
_HREF = re.compile(rf"^{re.escape(SCHEME)}({_ID})$")
#: [label](meshnotes:file/ID): the label may hold anything but brackets and line ends
_LINK = re.compile(rf"\[([^\[\]\n]*)\]\({re.escape(SCHEME)}({_ID})\)")


@dataclass(frozen=True)
class FileLink:
    """One link found in a text: its span there, its label and the id it names."""

    start: int
    end: int
    label: str
    file_id: str


def file_link(name: str, file_id: str) -> str:
    """The Markdown link to a file, labelled with its name (brackets taken out of it)."""
    label = re.sub(r"[\[\]\n\r]", " ", name).strip() or "file"
    return f"[{label}]({SCHEME}{file_id.lower()})"


def href_file(href: str) -> str | None:
    """The file id a link target names (None: not a link to an attachment)."""
    match = _HREF.match(href.strip())
    return match.group(1).lower() if match else None


def links(text: str) -> list[FileLink]:
    """Every link to an attachment in `text`, in order."""
    return [
        FileLink(m.start(), m.end(), m.group(1), m.group(2).lower()) for m in _LINK.finditer(text)
    ]


def link_at(line: str, column: int) -> FileLink | None:
    """The link to an attachment under `column` of `line` (its last character included:
    a cursor just past a link still names it)."""
    for link in links(line):
        if link.start <= column <= link.end:
            return link
    return None
