"""What each ``meshnotes`` verb does, one module per part: node, chat, notes.

A verb is a function ``(args, home) -> exit status``; :mod:`tui.parser` binds
each to its arguments by name (:class:`Verb`), so that a command imports only
the module of the verb it runs. Verbs that need a running node call it through
:class:`crdt.client.Client`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from mesh.errors import UsageError

if TYPE_CHECKING:
    from crdt.client import Client
    from mesh.runtime.home import Home

PROG = "meshnotes"


class Verb(NamedTuple):
    """A verb's function by module and name, imported when the verb runs: starting the
    command line loads no verb's module (``history`` needs neither the node nor the UI).
    A named tuple: a read verb imports no dataclasses."""

    module: str
    name: str

    def __call__(self, args: argparse.Namespace, home: Home) -> int:
        func = getattr(importlib.import_module(self.module), self.name)
        return int(func(args, home))


def client(home: Home) -> Client:
    """The control client of the node running for `home`."""
    from crdt.client import Client  # the chat and notes verbs' names: not for a local read

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
