"""Share my contact: this node's invite code and its QR code, for another device to add."""

from __future__ import annotations

import datetime
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.qr import qr_text


class InviteScreen(ModalScreen[None]):
    """Show an invite (as ``Daemon.make_invite`` returns it): the QR code, then the code."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]
    DEFAULT_CSS = """
    InviteScreen { align: center middle; }
    InviteScreen > VerticalScroll { width: 80; height: auto; max-height: 100%;
                                    border: round $accent; padding: 0 2; background: $surface; }
    InviteScreen #invite-qr { width: auto; margin: 1 0; }
    InviteScreen #invite-code { margin-bottom: 1; }
    """

    def __init__(self, invite: dict[str, Any]) -> None:
        super().__init__()
        self.invite = invite

    def compose(self) -> ComposeResult:
        expires = datetime.datetime.fromtimestamp(self.invite["expires"], datetime.UTC)
        where = ", ".join(self.invite["addresses"]) or "no address: others can add, not dial you"
        with VerticalScroll():
            yield Label("[b]Share my contact[/]  scan it, or copy the code below")
            yield Static(qr_text(self.invite["invite"]), id="invite-qr", markup=False)
            yield Static(self.invite["invite"], id="invite-code", markup=False)
            yield Static(
                f"On the other device: meshnotes contacts add CODE (or a in the UI).\n"
                f"Reachable at: {where}\nValid until {expires:%Y-%m-%d %H:%M} UTC.",
                markup=False,
            )
            yield Label("[dim]Escape to close[/]")

    def action_close(self) -> None:
        self.dismiss(None)
