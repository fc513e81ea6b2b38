"""Peers and contacts: routes, links, safety numbers, and the actions on them."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from mesh.errors import MeshError
from mesh.wire.address import PeerAddress
from mesh.wire.identity import decode_peer_id, encode_peer_id, safety_number
from tui.dialogs import Message, Prompt
from tui.session import Session
from tui.widgets.format import seen_text


class PeersScreen(Screen[None]):
    CSS_PATH = "peers_screen.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "add_contact", "Add contact"),
        Binding("v", "verify", "Verified / not"),
        Binding("s", "safety_number", "Safety number"),
        Binding("c", "connect", "Connect"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        # what another device can dial first; loopback ones (this machine only) last, dimmed
        addresses = self.session.addresses_for_others() or ["not listening"]
        lines = [f"your address (give it to others): [b]{escape(addresses[0])}[/]"]
        lines += [f"  [dim]also: {escape(other)}[/]" for other in addresses[1:]]
        yield Static(
            "[b]Peers and contacts[/]  [dim]routes as this node sees them[/]\n" + "\n".join(lines),
            id="peers-title",
        )
        yield DataTable(id="peers", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(
            "peer", "name", "contact", "verified", "next hop", "hops", "link", "seen", "LAN", "dial"
        )
        self.refresh_table()
        self.set_interval(2.0, self.refresh_table)
        table.focus()

    def refresh_table(self) -> None:
        if self.session.closed:
            return  # quitting
        table = self.query_one(DataTable)
        selected = table.cursor_row
        table.clear()
        status = self.session.status()
        routes = {r["dest"]: r for r in status.get("routes", [])}
        links = {link["peer_id"]: link["direction"] for link in status.get("links", [])}
        contacts = {c["peer_id"]: c for c in self.session.contacts()}
        lan = {p["peer_id"]: p for p in status.get("lan", [])}  # found over mDNS
        dials = {d["peer_id"]: d for d in status.get("dials", [])}
        peers = sorted(set(routes) | set(contacts) | set(links) | set(lan) | set(dials))
        for peer in peers:
            route = routes.get(peer)
            contact = contacts.get(peer)
            table.add_row(
                peer[:16],
                self.session.display_name(peer),
                "yes" if contact else "",
                "✓" if contact and contact["verified"] else "",
                self.session.display_name(route["next_hop"]) if route else "",
                str(route["hops"]) if route else "unreachable",
                links.get(peer, ""),
                seen_text(self.session.presence(peer)),
                lan[peer]["address"].split("#")[0] if peer in lan else "",
                _dial_cell(dials.get(peer)),
                key=peer,
            )
        if peers:
            table.move_cursor(row=min(selected, len(peers) - 1))

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def action_add_contact(self) -> None:
        selected = self._selected() or ""

        def add(answer: str) -> None:
            peer, _, name = answer.partition(" ")
            if name.strip():
                save(peer, name.strip())
                return
            try:  # no nickname given: ask for one, offering the name the peer gives itself
                key = self.session.resolve_peer(_peer_of(peer))
            except MeshError as exc:
                self.app.notify(str(exc), severity="error")
                return
            own = self.session.own_name_of(encode_peer_id(key)) or ""
            self.app.push_screen(
                Prompt("Nickname for this contact (Enter to keep it unnamed)", "e.g. bob", own),
                lambda nickname: save(peer, nickname),
            )

        def save(peer: str, name: str | None) -> None:
            try:
                if peer.startswith("ws://"):  # an address: dial it too
                    address = PeerAddress.parse(peer)
                    self.session.connect(address)
                    peer = str(address).split("#", 1)[1]
                self.session.add_contact(peer, name or None)
            except MeshError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify("contact added")
            self.refresh_table()

        self.app.push_screen(
            Prompt("Add contact: PEER-ID-or-ADDRESS [NICKNAME]", value=selected),
            lambda a: add(a) if a else None,
        )

    def action_verify(self) -> None:
        peer = self._selected()
        if peer is None:
            return
        try:
            contact = self.session.contact(peer)
            self.session.verify(peer, not contact["verified"])
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.refresh_table()

    def action_safety_number(self) -> None:
        peer = self._selected()
        if peer is None:
            return
        number = safety_number(self.session.public_key, decode_peer_id(peer))
        self.app.push_screen(
            Message(
                f"Safety number with {self.session.display_name(peer)}",
                f"\n  [b]{number}[/]\n\nCompare it with theirs (in person or by a call)."
                "\nIf both match, press v on their row to mark them verified.",
            )
        )

    def action_connect(self) -> None:
        def connect(address: str) -> None:
            try:
                self.session.connect(PeerAddress.parse(address))
            except MeshError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify("dialing")

        self.app.push_screen(
            Prompt("Connect to (ws://HOST:PORT#PEERID)"), lambda a: connect(a) if a else None
        )


def _dial_cell(dial: dict[str, Any] | None) -> str:
    """A dial's state, with the reason of its last failure while it waits or gave up."""
    if dial is None:
        return ""
    if dial["state"] in ("waiting", "given up") and dial["reason"]:
        return f"{dial['state']}: {dial['reason']}"
    return str(dial["state"])


def _peer_of(text: str) -> str:
    """The peer a typed address (``ws://HOST:PORT#PEERID``) or peer name stands for."""
    return text.split("#", 1)[1] if text.startswith("ws://") and "#" in text else text
