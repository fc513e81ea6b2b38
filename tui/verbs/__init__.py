"""What each ``meshnotes`` verb does, one module per part: node, chat, notes.

A verb is a function ``(args, home) -> exit status``; :mod:`tui.parser` binds
each to its arguments. Verbs that need a running node call it through
:class:`crdt.client.Client`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from crdt.client import Client
from mesh.errors import UsageError
from mesh.runtime.home import Home

PROG = "meshnotes"


def client(home: Home) -> Client:
    """The control client of the node running for `home`."""
    return Client(home.control_socket)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def message_text(text: str) -> str:
    """A message's TEXT argument; ``-`` reads it from stdin (without its last line break)."""
    if text != "-":
        return text
    try:
        text = sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the message from stdin: {exc}") from exc
    text = text.removesuffix("\n")
    if not text.strip():
        raise UsageError("the message read from stdin is empty")
    return text
