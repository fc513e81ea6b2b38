"""The help screen: every key binding, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]meshnotes — keys[/]

[b]Anywhere[/]
  ctrl+p      command palette: every action by name
  ctrl+q      quit (stops the node the UI runs; an attached UI leaves its node running)
  ?           this help          escape   back to the sidebar

[b]Main screen[/] (when the sidebar has focus)
  ↑ ↓ enter   open a room, a direct conversation or a note
  n           new room           i        invite someone to the open room
  r           remove a member    j        accept an invitation to the open room
  d           message a peer     o        new note in the open room
  m           import a Markdown file as a note     x   export the open note
  h           the open note's history (versions; r restores one)
  c           connect to a peer (ws://HOST:PORT#PEERID)
  p           peers and contacts
  s           share my contact (invite code and QR)
  a           add a contact from an invite code (and dial it)
  / ctrl+f    search every conversation; Enter on a result opens it there
  u           send a file to the open conversation (pick it, or type or paste its path)

[b]Chat[/]  enter sends; ↑ ↓ recall what you sent. Your messages read "pending" until the
        recipient's signed receipt arrives, then "delivered". "NAME is typing…" shows under it.
        ctrl+up (or shift+tab) goes to the messages: ↑ ↓ pick one, then
        r reply   e edit (yours)   x delete for everyone (yours)   + react (again: undo)
        g go to the message a reply answers   o open the file it carries (f fetch, s save)
        escape cancels a reply or an edit.
        The sidebar counts unread messages, [3 @1]: one of them mentions you (@name).
[b]Notes[/] type freely: every member sees your edits live, and theirs appear without moving
        your cursor; the bottom line shows where the others' cursors are. Enter in the title
        field renames the note. f2 toggles a Markdown preview. ctrl+l links a file at the
        cursor, as \\[NAME](meshnotes:file/ID); ctrl+o (or a click in the preview) opens the
        file a link under the cursor names.

[b]Peers[/]  a add contact   v verified / not   s safety number   c connect   escape back

Escape closes this help."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 92; height: 80%; border: round $accent;
                                  background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)
