"""Asking a new user for the display name their identity is made with.

``meshnotes init`` asks on the terminal (:func:`ask_in_terminal`); the UI's first start,
on a home without an identity, asks in a small Textual app (:class:`NameApp`) before
the identity is made. Both only ask when a person is there to answer (stdin a
terminal) and no name was given (``--name``, ``name`` in meshnotes.toml); otherwise
the name is what it was before (empty for ``init``, ``$USER`` for the UI).
"""

from __future__ import annotations

import sys
from typing import TextIO

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label

from mesh.runtime.addressbook import clean_name

QUESTION = "Your display name, shown to the people you talk to"


def ask_in_terminal(default: str, stdin: TextIO | None = None, out: TextIO | None = None) -> str:
    """Ask for a display name on the terminal (the question on stderr, so stdout stays the
    peer id); an empty answer or end of input keeps `default`."""
    stdin = stdin or sys.stdin
    out = out or sys.stderr
    hint = f" [{default}]" if default else ""
    out.write(f"{QUESTION}{hint}: ")
    out.flush()
    answer = clean_name(stdin.readline())
    return answer or default


class NameApp(App[str]):
    """One question: the display name. Exits with the cleaned answer (or `default` on an
    empty answer or Escape)."""

    BINDINGS = [Binding("escape", "keep_default", "Keep the default")]
    CSS = """
    Screen { align: center middle; }
    Vertical { width: 72; height: auto; border: round $accent; padding: 1 2; }
    Label { margin-bottom: 1; }
    """

    def __init__(self, default: str = "") -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Welcome to meshnotes[/]")
            yield Label(f"{QUESTION}:")
            yield Input(value=self.default, placeholder="e.g. alice", id="name-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.exit(clean_name(event.value) or self.default)

    def action_keep_default(self) -> None:
        self.exit(self.default)


def ask_in_ui(default: str) -> str:
    """Run :class:`NameApp` and return the name it was given."""
    return NameApp(default).run() or default
